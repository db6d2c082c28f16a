/**
 * What a technician may ask for (`POST /api/v1/orders`), validated before anything is signed.
 * The protocol schema checks the order again when it is made.
 */
import { z } from 'zod';
import { hash, restoreSources, site, unsafeSnapshotPath } from '@medvault/protocol';

/** A path inside the snapshot: the agent's own rule (unsafeSnapshotPath), so nothing is signed that the agent would refuse. */
const path = z
  .string()
  .max(8192)
  .superRefine((p, ctx) => {
    const why = unsafeSnapshotPath([p]);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });

export const orderRequestSchema = z.strictObject({
  site,
  /** 'latest', a full snapshot hash, or a unique prefix of at least 6 hex characters (as listed). */
  snapshot: z.union([z.literal('latest'), hash, z.string().regex(/^[0-9a-f]{6,63}$/, 'latest, a snapshot hash or a prefix of at least 6 of its hex characters')]),
  store: z.string().min(1).max(200).optional(),
  paths: z.array(path).min(1, 'at least one path ("" restores everything)').max(1000),
  target: z
    .string()
    .min(2)
    .max(4096)
    .startsWith('/', 'an absolute folder on the appliance')
    .refine((p) => !p.split('/').includes('..'), 'no ".." segments')
    .refine((p) => !p.includes('\0'), 'no NUL bytes'),
  source: z.enum(restoreSources).default('local'),
  mode: z.enum(['new', 'overwrite']).default('new'),
});

export type OrderRequestBody = z.infer<typeof orderRequestSchema>;

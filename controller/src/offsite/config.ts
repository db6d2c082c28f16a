/** The `[offsite]` section of controller.toml (documented in config.ts): scrub, reconcile, retention. */
import { z } from 'zod';
import { parseDuration, type RetentionPolicy } from '@medvault/protocol';

const duration = z.string().refine((v) => parseDuration(v) !== undefined, 'a duration like "30d", "12h", "1y2m" (y m w d h)');
const count = z.number().int().min(0).max(100_000).optional();

export const offsiteConfigSchema = z
  .strictObject({
    scrub_interval: z.number().int().min(0).max(365 * 86400).default(86400),
    scrub_rate: z.number().int().min(0).default(20 * 1024 * 1024),
    reconcile_interval: z.number().int().min(60).max(365 * 86400).default(86400),
    prune_interval: z.number().int().min(0).max(365 * 86400).default(86400),
    retention: z
      .strictObject({
        keep_last: count, keep_hourly: count, keep_daily: count, keep_weekly: count, keep_monthly: count, keep_yearly: count,
        keep_within: duration.optional(),
        min_age: duration.default('7d'),
      })
      .default({ min_age: '7d' }),
  })
  .default({ scrub_interval: 86400, scrub_rate: 20 * 1024 * 1024, reconcile_interval: 86400, prune_interval: 86400, retention: { min_age: '7d' } });

export type OffsiteConfig = z.infer<typeof offsiteConfigSchema>;

/** The off-site retention policy and minimum age (ms) from the configuration. */
export function offsitePolicy(c: OffsiteConfig['retention']): { policy: RetentionPolicy; minAgeMs: number } {
  const r = c;
  const policy: RetentionPolicy = {
    ...(r.keep_last !== undefined ? { last: r.keep_last } : {}),
    ...(r.keep_hourly !== undefined ? { hourly: r.keep_hourly } : {}),
    ...(r.keep_daily !== undefined ? { daily: r.keep_daily } : {}),
    ...(r.keep_weekly !== undefined ? { weekly: r.keep_weekly } : {}),
    ...(r.keep_monthly !== undefined ? { monthly: r.keep_monthly } : {}),
    ...(r.keep_yearly !== undefined ? { yearly: r.keep_yearly } : {}),
    ...(r.keep_within !== undefined ? { withinMs: parseDuration(r.keep_within)! } : {}),
  };
  return { policy, minAgeMs: parseDuration(c.min_age)! };
}

/**
 * The agent's configuration (`/etc/medvault/agent.toml`). Parsed and validated in full before
 * anything runs; a mistake is reported with the file, the key and what was expected.
 *
 *   site = "clinic-a"
 *   state_dir = "/var/lib/medvault"            # receipts, order ledger, index cache, audit log
 *   key_file = "/etc/medvault/local.key"       # 32 random bytes; wraps each repository's master key
 *   recovery_public_key = "<base64url X25519>" # the organisation's offline recovery key (public half)
 *   controller_public_key = "<base64url Ed25519>"  # pinned at enrolment; verifies orders and receipts
 *   restore_roots = ["/srv/restore"]           # orders may restore only inside these folders
 *   [nats]
 *   servers = ["nats://127.0.0.1:4222"]
 *   nkey_file = "/etc/medvault/site.nk"        # the site's NATS identity (enrolment bundle)
 *   ca_file = "/etc/medvault/ca.pem"           # TLS only, against this private CA
 *   [[disks]]
 *   path = "/mnt/backup1"                      # one repository per backup disk
 *   [[stores]]
 *   name = "records"
 *   type = "files"
 *   path = "/srv/records"
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve, dirname } from 'node:path';
import { parse } from 'smol-toml';
import { z } from 'zod';
import { MedvaultError, codes, SITE_RE } from '@medvault/protocol';
import { cronProblem } from './schedule/cron.js';

const b64key = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a 32-byte key as 43 base64url characters');
const path = z.string().min(1, 'a path');

const cron = z.string().superRefine((e, ctx) => {
  const problem = cronProblem(e);
  if (problem) ctx.addIssue({ code: 'custom', message: `not a cron expression (${problem})` });
});

/** The SOP's schedule per store: weekly full (reread and rehash everything), daily incremental. */
const schedule = z
  .strictObject({
    full: cron.default('0 2 * * 0'),
    incremental: cron.default('0 2 * * *'),
    timezone: z.string().refine((tz) => cronProblem('0 2 * * *', tz) === undefined, 'an IANA time zone such as Europe/Berlin').optional(),
  })
  .default({ full: '0 2 * * 0', incremental: '0 2 * * *' });

const storeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a store name: letters, digits, _ . -');

/** A record store: a folder tree, or an EHR database dumped consistently (pg_dump, mysqldump). */
const store = z.discriminatedUnion('type', [
  z.strictObject({
    name: storeName,
    type: z.literal('files'),
    path,
    schedule,
    /** Watcher events become a snapshot within seconds (RPO target `rpo_s`). */
    continuous: z.boolean().default(false),
    rpo_s: z.number().int().min(1).max(86_400).default(60),
    /** With `continuous`, a periodic rescan reconciles what the watcher missed. */
    rescan_s: z.number().int().min(10).max(86_400).default(900),
  }),
  z.strictObject({
    name: storeName,
    type: z.enum(['postgres', 'mysql']),
    database: z.string().regex(/^[A-Za-z0-9_$-]{1,64}$/, 'a database name'),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65_535).optional(),
    user: z.string().min(1).max(64).optional(),
    /** A file holding the password (never the password itself in the config). */
    password_file: path.optional(),
    schedule,
    rpo_s: z.number().int().min(1).max(86_400 * 7).default(86_400),
  }),
]);

export type StoreConfig = z.infer<typeof store>;
export type FileStoreConfig = Extract<StoreConfig, { type: 'files' }>;
export type DatabaseStoreConfig = Extract<StoreConfig, { type: 'postgres' | 'mysql' }>;

export const configSchema = z.strictObject({
  site: z.string().regex(SITE_RE, 'a site id: lowercase letters, digits and -, at most 63'),
  state_dir: path,
  key_file: path,
  recovery_public_key: b64key,
  controller_public_key: b64key.optional(),
  restore_roots: z.array(path).default([]),
  nats: z
    .strictObject({
      servers: z.array(z.string().regex(/^(nats|tls):\/\/[^\s]+$/, 'nats://host:port')).min(1),
      creds: path.optional(),
      /** The site's nkey seed (from the enrolment bundle, mode 0600). */
      nkey_file: path.optional(),
      /** The private CA of the NATS server: with it the agent connects over TLS only. */
      ca_file: path.optional(),
    })
    .optional(),
  disks: z.array(z.strictObject({ path })).min(1, 'at least one [[disks]] entry'),
  stores: z.array(store).min(1, 'at least one [[stores]] entry'),
});

export type AgentConfig = z.infer<typeof configSchema> & { file: string };

/** Reads, parses and validates `file`; relative paths in it are resolved against its folder. */
export function loadConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MedvaultError(codes.CONFIG_INVALID, `${file}: cannot read configuration`, { cause });
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (cause) {
    throw new MedvaultError(codes.CONFIG_INVALID, `${file}: ${(cause as Error).message}`, { cause });
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MedvaultError(codes.CONFIG_INVALID, `${file}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  const c = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dirname(file), p));
  const names = new Set<string>();
  for (const s of c.stores) {
    if (names.has(s.name)) throw new MedvaultError(codes.CONFIG_INVALID, `${file}: stores: store name ${s.name} is used twice`);
    names.add(s.name);
  }
  return {
    ...c,
    file,
    state_dir: abs(c.state_dir),
    key_file: abs(c.key_file),
    ...(c.nats
      ? {
          nats: {
            ...c.nats,
            ...(c.nats.creds ? { creds: abs(c.nats.creds) } : {}),
            ...(c.nats.nkey_file ? { nkey_file: abs(c.nats.nkey_file) } : {}),
            ...(c.nats.ca_file ? { ca_file: abs(c.nats.ca_file) } : {}),
          },
        }
      : {}),
    restore_roots: c.restore_roots.map(abs),
    disks: c.disks.map((d) => ({ path: abs(d.path) })),
    stores: c.stores.map((s) =>
      s.type === 'files' ? { ...s, path: abs(s.path) } : { ...s, ...(s.password_file ? { password_file: abs(s.password_file) } : {}) },
    ),
  };
}

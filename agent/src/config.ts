/**
 * The agent's configuration (`/etc/medvault/agent.toml`). Parsed and validated in full before
 * anything runs; every mistake is reported with the file, the line, the key and what was expected
 * (`medvault-agent config check`). Paths may be `credential:NAME` (systemd LoadCredential=).
 *
 *   site = "clinic-a"
 *   state_dir = "/var/lib/medvault"            # receipts, order ledger, index cache, audit log
 *   key_file = "/etc/medvault/local.key"       # 32 random bytes; wraps each repository's master key
 *   recovery_public_key = "<base64url X25519>" # the organisation's offline recovery key (public half)
 *   controller_public_key = "<base64url Ed25519>"  # pinned at enrolment; verifies orders and receipts
 *   restore_roots = ["/srv/restore"]           # orders may restore only inside these folders
 *   drill_dir = "/var/lib/medvault/drills"     # drills' scratch space (default <state_dir>/drills)
 *   [nats]
 *   servers = ["nats://127.0.0.1:4222"]
 *   nkey_file = "/etc/medvault/site.nk"        # the site's NATS identity (enrolment bundle)
 *   ca_file = "/etc/medvault/ca.pem"           # TLS only, against this private CA
 *   [replication]                              # default: unlimited
 *   bandwidth = [{ days = "mon-fri", from = "07:00", to = "19:00", limit = "5Mbit" }]
 *   timezone = "Europe/Berlin"                 # of the windows; default the system's
 *   [[disks]]
 *   path = "/mnt/backup1"                      # one repository per backup disk
 *   [[stores]]
 *   name = "records"
 *   type = "files"
 *   path = "/srv/records"
 */
import { isAbsolute, resolve, dirname, join } from 'node:path';
import { parse } from 'smol-toml';
import { z } from 'zod';
import { MedvaultError, codes, SITE_RE, formatIssue, readConfigText, keyLines, keyName, locateKey, schemaIssues, syntaxIssue, type ConfigIssue } from '@medvault/protocol';
import { cronProblem } from './schedule/cron.js';
import { parseClock, parseDays, parseRate, type BandwidthWindow } from './replicate/schedule.js';

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
    /** RPO target; unset: 60 s when continuous, else from the schedule (rpoTargetS). */
    rpo_s: z.number().int().min(1).max(86_400).optional(),
    /** With `continuous`, a periodic rescan reconciles what the watcher missed. */
    rescan_s: z.number().int().min(10).max(86_400).default(900),
    /** Recovery time target: a drill's restore plus verification of this store must finish within it (default DEFAULT_RTO_S). */
    rto_s: z.number().int().min(1).max(86_400 * 7).optional(),
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
    rpo_s: z.number().int().min(1).max(86_400 * 7).optional(),
    rto_s: z.number().int().min(1).max(86_400 * 7).optional(),
  }),
]);

/** A bandwidth window: weekdays, local from-to, and the limit for replication within it. */
const bandwidthWindow = z
  .strictObject({
    days: z.string().refine((d) => parseDays(d) !== undefined, 'not a day list such as "mon-fri", "sat,sun" or "*"'),
    from: z.string().refine((t) => parseClock(t) !== undefined, 'a local time such as "07:00"'),
    to: z.string().refine((t) => parseClock(t) !== undefined, 'a local time such as "19:00" (up to "24:00")'),
    limit: z.string().refine((r) => parseRate(r) !== undefined, 'a rate such as "5Mbit", "500kbit", "2MB" (at least 64kbit) or "unlimited"'),
  })
  .superRefine((w, ctx) => {
    const from = parseClock(w.from);
    const to = parseClock(w.to);
    if (from !== undefined && to !== undefined && to <= from) ctx.addIssue({ code: 'custom', path: ['to'], message: `a time after from (${w.from}); a window over midnight is two windows` });
  })
  .transform((w): BandwidthWindow => ({ days: parseDays(w.days)!, from: parseClock(w.from)!, to: parseClock(w.to)!, ...(parseRate(w.limit) ? { bytesPerS: parseRate(w.limit)! } : {}) }));

/** Replication off site: a bandwidth limit by weekly schedule (first matching window wins; default unlimited). */
const replication = z
  .strictObject({
    bandwidth: z.array(bandwidthWindow).max(100).default([]),
    timezone: z.string().refine((tz) => cronProblem('0 2 * * *', tz) === undefined, 'an IANA time zone such as Europe/Berlin').optional(),
  })
  .optional();

export type StoreConfig = z.infer<typeof store>;
/** A store's recovery time target when it sets no `rto_s`: four hours. */
export const DEFAULT_RTO_S = 14_400;
export type FileStoreConfig = Extract<StoreConfig, { type: 'files' }>;
export type DatabaseStoreConfig = Extract<StoreConfig, { type: 'postgres' | 'mysql' }>;

export const configSchema = z.strictObject({
  site: z.string().regex(SITE_RE, 'a site id: lowercase letters, digits and -, at most 63'),
  state_dir: path,
  key_file: path,
  recovery_public_key: b64key,
  controller_public_key: b64key.optional(),
  restore_roots: z.array(path).default([]),
  /** Scratch space of disaster-recovery drills (default `<state_dir>/drills`); never inside a record store. */
  drill_dir: path.optional(),
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
  replication,
  disks: z.array(z.strictObject({ path })).min(1, 'at least one [[disks]] entry'),
  stores: z.array(store).min(1, 'at least one [[stores]] entry'),
});

export type AgentConfig = z.infer<typeof configSchema> & { file: string };

/**
 * `credential:NAME` names a systemd credential (`LoadCredential=NAME:…` in the unit): the file
 * `$CREDENTIALS_DIRECTORY/NAME` inside the service, else the credential's source in
 * `$MEDVAULT_CREDENTIALS_SOURCE` (default `/etc/medvault/credentials`) for the CLI run by an admin.
 */
export function resolveCredential(value: string, env: NodeJS.ProcessEnv = process.env): string {
  const m = /^credential:([A-Za-z0-9_.-]+)$/.exec(value);
  if (!m) return value;
  return join(env.CREDENTIALS_DIRECTORY ?? env.MEDVAULT_CREDENTIALS_SOURCE ?? '/etc/medvault/credentials', m[1]!);
}

/**
 * Reads, parses and validates `file`, reporting every mistake (syntax, schema, duplicates) with its
 * line, key and what was expected; `config` only when there are none. Relative paths are resolved
 * against the file's folder, `credential:NAME` against the credentials folder.
 */
export function checkConfig(file: string): { config?: AgentConfig; issues: ConfigIssue[] } {
  const read = readConfigText(file);
  if ('issue' in read) return { issues: [read.issue] };
  const text = read.text;
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (cause) {
    return { issues: [syntaxIssue(file, cause, text)] };
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) return { issues: schemaIssues(file, text, raw, configSchema, parsed.error) };
  const c = parsed.data;
  const lines = keyLines(text);
  const issues: ConfigIssue[] = [];
  const issue = (path: (string | number)[], message: string) => {
    const line = locateKey(lines, path);
    issues.push({ file, ...(line !== undefined ? { line } : {}), key: keyName(path), message });
  };
  const abs = (p: string) => {
    const r = resolveCredential(p);
    return isAbsolute(r) ? r : resolve(dirname(file), r);
  };
  const names = new Map<string, number>();
  c.stores.forEach((s, i) => {
    const first = names.get(s.name);
    if (first !== undefined) issue(['stores', i, 'name'], `store name "${s.name}" is already used by stores[${first}]`);
    else names.set(s.name, i);
  });
  const disks = new Map<string, number>();
  c.disks.forEach((d, i) => {
    const p = abs(d.path);
    const first = disks.get(p);
    if (first !== undefined) issue(['disks', i, 'path'], `disk ${p} is already disks[${first}]`);
    else disks.set(p, i);
    c.stores.forEach((s, j) => {
      if (s.type === 'files' && (p === abs(s.path) || p.startsWith(`${abs(s.path)}/`))) issue(['disks', i, 'path'], `expected a disk outside the record stores, got ${p}, inside stores[${j}] (${s.name}): backups would back themselves up`);
    });
  });
  if (c.drill_dir !== undefined) {
    const d = abs(c.drill_dir);
    c.stores.forEach((s, j) => {
      if (s.type === 'files' && (d === abs(s.path) || d.startsWith(`${abs(s.path)}/`))) issue(['drill_dir'], `expected a folder outside the record stores, got ${d}, inside stores[${j}] (${s.name}): drills never write into a record store`);
    });
  }
  if (issues.length > 0) return { issues };
  return {
    issues,
    config: {
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
      ...(c.drill_dir !== undefined ? { drill_dir: abs(c.drill_dir) } : {}),
      disks: c.disks.map((d) => ({ path: abs(d.path) })),
      stores: c.stores.map((s) =>
        s.type === 'files' ? { ...s, path: abs(s.path) } : { ...s, ...(s.password_file ? { password_file: abs(s.password_file) } : {}) },
      ),
    },
  };
}

/** Like checkConfig, but throws MV_ERR_CONFIG_INVALID listing every mistake, one per line. */
export function loadConfig(file: string): AgentConfig {
  const { config, issues } = checkConfig(file);
  if (!config) throw new MedvaultError(codes.CONFIG_INVALID, issues.map(formatIssue).join('\n'));
  return config;
}

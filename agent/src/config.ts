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

const b64key = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a 32-byte key as 43 base64url characters');
const path = z.string().min(1, 'a path');

export const configSchema = z.strictObject({
  site: z.string().regex(SITE_RE, 'a site id: lowercase letters, digits and -, at most 63'),
  state_dir: path,
  key_file: path,
  recovery_public_key: b64key,
  controller_public_key: b64key.optional(),
  restore_roots: z.array(path).default([]),
  nats: z.strictObject({ servers: z.array(z.string().regex(/^(nats|tls):\/\/[^\s]+$/, 'nats://host:port')).min(1), creds: path.optional() }).optional(),
  disks: z.array(z.strictObject({ path })).min(1, 'at least one [[disks]] entry'),
  stores: z
    .array(z.strictObject({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a store name: letters, digits, _ . -'), type: z.literal('files'), path }))
    .min(1, 'at least one [[stores]] entry'),
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
    ...(c.nats?.creds ? { nats: { ...c.nats, creds: abs(c.nats.creds) } } : {}),
    restore_roots: c.restore_roots.map(abs),
    disks: c.disks.map((d) => ({ path: abs(d.path) })),
    stores: c.stores.map((s) => ({ ...s, path: abs(s.path) })),
  };
}

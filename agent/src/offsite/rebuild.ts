/**
 * Rebuilding a lost appliance's repository from the off-site copy onto a fresh disk
 * (`medvault-agent rebuild --recovery-key FILE`).
 *
 * 1. Open the off-site repository with the organisation's recovery private key (proves the key
 *    and the copy's config and key files before a byte is written).
 * 2. Refuse a disk that holds another repository, or files that are no repository (a folder must be
 *    empty, or hold this repository's partial rebuild: its key files open with the recovery key);
 *    the same repository is resumed (idempotent). The CLI checks the folder and the recovery key
 *    before it creates the local key or any folder.
 * 3. Copy every key file, pack, index file and snapshot (one bulk read per kind, each object
 *    verified off site and again by Store.put: atomic, durable, never overwriting); objects already
 *    on the disk are skipped. An object damaged off site is reported, the rest is copied.
 * 4. Add a key file sealing the master key to this appliance's NEW local key and to the recovery
 *    public key of the configuration.
 * 5. Write `config` last: until then the disk is not a repository, so a crash at any point leaves
 *    either nothing usable or something `rebuild` resumes.
 */
import { readdir } from 'node:fs/promises';
import { MedvaultError, codes, sha256Hex } from '@medvault/protocol';
import type { Link } from '../replicate/link.js';
import type { Store } from '../store/store.js';
import { Repository } from '../repo/repository.js';
import { decodeKeyFile, encodeKeyFile } from '../repo/key-file.js';
import { decodeConfig } from '../repo/config-file.js';
import { OffsiteStore } from './offsite-store.js';
import { openOffsiteRepository } from './restore-source.js';

export interface RebuildResult {
  repo: string;
  /** Objects copied now, and bytes. */
  copied: number;
  bytes: number;
  /** Objects that were already on the disk (a resumed rebuild). */
  present: number;
  /** Objects that could not be copied, with why. */
  failed: { kind: string; name: string; problem: string }[];
  /** The key file made for this appliance's local key. */
  keyFile: string;
  ms: number;
}

export async function rebuildFromOffsite(o: {
  link: Pick<Link, 'read'>;
  site: string;
  /** Repository id; default the site's only repository off site. */
  repo?: string;
  recoveryPrivateKey: string;
  recoveryPublicKey: string;
  localKey: Uint8Array;
  disk: Store;
  label: string;
  now?: () => number;
  onObject?: (copied: number, bytes: number) => void;
}): Promise<RebuildResult> {
  const now = o.now ?? Date.now;
  const t0 = now();
  const unlock = { recoveryPrivateKey: o.recoveryPrivateKey };
  const opened = await openOffsiteRepository(o.link, o.site, o.repo, unlock);
  const id = opened.id;
  await opened.close();
  const existing = await o.disk.get('config', 'config');
  if (existing && decodeConfig(existing, `${o.label}/config`).id !== id) {
    throw new MedvaultError(codes.CONFLICT, `${o.label} holds repository ${decodeConfig(existing).id}, not ${id}: refusing to rebuild over it (use an empty disk)`);
  }
  if (!existing) {
    for await (const e of o.disk.list('key')) {
      const b = await o.disk.get('key', e.name);
      if (!b || !(await decodeKeyFile(b, id, unlock, e.name).then(() => true, () => false))) {
        throw new MedvaultError(codes.CONFLICT, `${o.label}: key file ${e.name} is not of repository ${id}: the disk holds a partial repository that is not this one; refusing to rebuild over it (use an empty disk)`);
      }
    }
  }
  const off = new OffsiteStore(o.link, o.site, id);
  const r: RebuildResult = { repo: id, copied: 0, bytes: 0, present: 0, failed: [], keyFile: '', ms: 0 };
  let master: Buffer | undefined;
  for (const kind of ['key', 'pack', 'index', 'snapshot'] as const) {
    for await (const obj of off.objects(kind)) {
      if (!('data' in obj)) {
        r.failed.push({ kind, name: obj.name, problem: obj.problem });
        continue;
      }
      if (kind === 'key') master ??= await decodeKeyFile(obj.data, id, unlock, `${off.label}: key ${obj.name}`).catch(() => undefined);
      if (await o.disk.put(kind, obj.name, obj.data)) {
        r.copied++;
        r.bytes += obj.data.length;
        o.onObject?.(r.copied, r.bytes);
      } else r.present++;
    }
  }
  if (!master) throw new MedvaultError(codes.KEY_INVALID, `${off.label}: the recovery private key opens none of its key files`);
  r.keyFile = (await localKeyFile(o.disk, id, o.localKey)) ?? '';
  if (!r.keyFile) {
    const keyFile = await encodeKeyFile(id, master, o.localKey, o.recoveryPublicKey, now());
    r.keyFile = sha256Hex(keyFile);
    await o.disk.put('key', r.keyFile, keyFile);
  }
  const config = await off.get('config', 'config');
  if (!config) throw new MedvaultError(codes.NOT_FOUND, `${off.label}: config missing`);
  await o.disk.put('config', 'config', config);
  // The local key must now open it by itself.
  const local = await Repository.open(o.disk, { localKey: o.localKey }, { label: o.label });
  await local.close();
  r.ms = now() - t0;
  return r;
}

/** The key file on `disk` that `localKey` opens (made by an earlier run), if any. */
async function localKeyFile(disk: Store, repo: string, localKey: Uint8Array): Promise<string | undefined> {
  for await (const e of disk.list('key')) {
    const b = await disk.get('key', e.name);
    if (b && (await decodeKeyFile(b, repo, { localKey }, e.name).then(() => true, () => false))) return e.name;
  }
  return undefined;
}

/** What a repository folder holds (DirStore); anything else in a folder to rebuild into is refused. */
const REPO_ENTRIES = new Set(['config', 'keys', 'data', 'index', 'snapshots', 'locks', 'tmp']);

/** Refuses (MV_ERR_CONFLICT, named) a folder to rebuild into that holds anything but a repository's files. */
export async function checkRebuildFolder(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw new MedvaultError(codes.STORAGE_FAILED, `${dir}: cannot read the folder to rebuild into: ${err.message}`, { cause: err });
  });
  const foreign = entries.filter((e) => !REPO_ENTRIES.has(e));
  if (foreign.length > 0) {
    throw new MedvaultError(codes.CONFLICT, `${dir} is not empty and is not a repository (holds ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}): refusing to rebuild into it (use an empty disk)`);
  }
}

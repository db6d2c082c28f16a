/**
 * Repositories on the configured backup disks: the repository lives directly in the disk's
 * folder, its LevelDB catalog in `<state_dir>/cache/<repo id>`.
 */
import { readFile, mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import type { AgentConfig } from '../config.js';
import { DirStore } from '../store/dir-store.js';
import { createLocalKey, readLocalKey } from '../crypto/local-key.js';
import { Repository, type Unlock } from './repository.js';

import { writeFileAtomic } from '../state/journal.js';

/**
 * Disk identities: `<state_dir>/disks.json` maps each configured disk path to the id of the
 * repository this agent created or first opened there. A disk holding another repository (or one
 * the local key cannot open) is foreign and refused: never written, never mistaken for ours.
 */
function identityFile(cfg: Pick<AgentConfig, 'state_dir'>): string {
  return join(cfg.state_dir, 'disks.json');
}

async function identities(cfg: Pick<AgentConfig, 'state_dir'>): Promise<Record<string, string>> {
  try {
    const j = JSON.parse(await readFile(identityFile(cfg), 'utf8')) as unknown;
    return j && typeof j === 'object' ? (j as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** The hint a refused disk's message ends with, when the disk may be the replacement of the old one. */
const replaceHint = (disk: string) => `; if this disk replaces that one (failed, lost, rotated out), run medvault-agent init --replace-disk ${disk}`;

/** Records `id` as the disk's repository; `replace` takes it in place of the one recorded (a replacement disk). */
async function checkIdentity(disk: string, id: string, cfg: Pick<AgentConfig, 'state_dir'>, replace = false): Promise<void> {
  const known = await identities(cfg);
  if (known[disk] === id) return;
  if (known[disk] !== undefined && !replace) throw new MedvaultError(codes.CONFLICT, `${disk}: foreign disk: it holds repository ${id}, but this agent's repository there is ${known[disk]}; refusing to use it${replaceHint(disk)}`);
  await mkdir(cfg.state_dir, { recursive: true });
  writeFileAtomic(identityFile(cfg), JSON.stringify({ ...known, [disk]: id }, null, 1));
}

/** What went wrong with a disk, as a stable alert code and a severity; undefined when it is not the disk's fault. */
export function diskProblem(err: unknown): { code: string; what: string } | undefined {
  const errno = (e: unknown): string | undefined => {
    for (let x = e as { code?: string; cause?: unknown } | undefined, i = 0; x && i < 5; x = x.cause as typeof x, i++) if (x.code && !x.code.startsWith('MV_ERR')) return x.code;
    return undefined;
  };
  const c = (err as { code?: string })?.code;
  const n = errno(err);
  if (n === 'ENOSPC' || n === 'EDQUOT') return { code: 'disk-full', what: 'the disk is full' };
  if (n === 'EROFS' || n === 'EACCES' || n === 'EPERM') return { code: 'disk-read-only', what: 'the disk is read-only or not writable' };
  if (n === 'EIO' || n === 'ENXIO' || n === 'ENODEV' || n === 'ESTALE') return { code: 'disk-failing', what: 'the disk fails to read or write' };
  if (c === codes.NOT_FOUND) return { code: 'disk-missing', what: 'the disk or its repository folder is not there' };
  if (c === codes.CONFLICT || c === codes.KEY_INVALID) return { code: 'disk-foreign', what: 'the disk holds a repository that is not this agent\'s' };
  if (c === codes.STORAGE_FAILED) return { code: 'disk-failing', what: 'the disk fails' };
  return undefined;
}

export type RepoConfigPart = Pick<AgentConfig, 'key_file' | 'state_dir' | 'recovery_public_key'>;

export function cacheDir(cfg: Pick<AgentConfig, 'state_dir'>): string {
  return join(cfg.state_dir, 'cache');
}

/** Creates the repository on `disk` unless it exists, creating the local key file if missing; returns its id. */
/**
 * Creates (or finds) this agent's repository on `disk`. A disk whose recorded repository is not
 * there (an empty replacement disk) is refused before anything is written, unless `replace`: then
 * the repository made or found there is recorded as the disk's from now on (`replaced`: the old id).
 */
export async function createDiskRepository(disk: string, cfg: RepoConfigPart, replace = false): Promise<{ id: string; created: boolean; replaced?: string }> {
  const localKey = await createLocalKey(cfg.key_file);
  const store = new DirStore(disk);
  const existed = await store.has('config', 'config').catch(() => false);
  const before = (await identities(cfg))[disk];
  if (!existed && before !== undefined && !replace) {
    // a known disk's folder that is gone is an unplugged disk, not a replacement: following the
    // replace hint then would create the repository on whatever holds the mount point
    if (!(await isFolder(disk))) throw new MedvaultError(codes.NOT_FOUND, `${disk}: ${await whyMissing(disk, cfg)}`);
    throw new MedvaultError(codes.CONFLICT, `${disk}: holds no repository, but this agent's repository there is ${before}; not creating one${replaceHint(disk)}`);
  }
  await store.init();
  const id = await Repository.create(store, { localKey, recoveryPublicKey: cfg.recovery_public_key });
  await mkdir(cacheDir(cfg), { recursive: true });
  // prove the local key opens it (an existing repository may belong to another key)
  const repo = await Repository.open(store, { localKey }, { label: disk });
  await repo.close();
  await checkIdentity(disk, id, cfg, replace);
  return { id, created: !existed, ...(before !== undefined && before !== id ? { replaced: before } : {}) };
}

/** Whether `path` is a folder (false when it is missing or unreadable). */
function isFolder(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory()).catch(() => false);
}

/**
 * Why a disk's folder is not there: no disk is mounted (unplugged), or one is mounted on the
 * folder above it (`dirname(disk)` is a mount point) without this folder: a new or empty disk,
 * which init sets up (`--replace-disk` when another repository was recorded for the path).
 */
async function whyMissing(disk: string, cfg: Pick<AgentConfig, 'state_dir'>): Promise<string> {
  const mount = dirname(disk);
  const [here, above] = await Promise.all([stat(mount), stat(dirname(mount))]).catch(() => []);
  if (!here?.isDirectory() || !above || mount === dirname(mount) || here.dev === above.dev) return 'the backup disk is not there (unplugged or not mounted)';
  const before = (await identities(cfg))[disk];
  const fix = before === undefined ? 'run medvault-agent init to create its repository' : `if it replaces the disk that held this agent's repository ${before} (failed, lost, rotated out), run medvault-agent init --replace-disk ${disk}`;
  return `the disk mounted at ${mount} has no folder ${basename(disk)} (a new or empty disk?); ${fix}`;
}

/** Reads a recovery private key file (base64url text). */
export async function readRecoveryKey(file: string): Promise<Unlock> {
  const text = await readFile(file, 'utf8').catch((cause) => {
    throw new MedvaultError(codes.KEY_INVALID, `${file}: cannot read the recovery key`, { cause });
  });
  return { recoveryPrivateKey: text.trim() };
}

/** Opens the repository on `disk` with `unlock`, or with the configured local key. */
export async function openDiskRepository(disk: string, cfg: Pick<AgentConfig, 'key_file' | 'state_dir'>, unlock?: Unlock): Promise<Repository> {
  const u = unlock ?? { localKey: await readLocalKey(cfg.key_file) };
  if (!(await isFolder(disk))) throw new MedvaultError(codes.NOT_FOUND, `${disk}: ${await whyMissing(disk, cfg)}`);
  const repo = await Repository.open(new DirStore(disk), u, { cacheDir: cacheDir(cfg), label: disk });
  if (!unlock) {
    try {
      await checkIdentity(disk, repo.id, cfg);
    } catch (err) {
      await repo.close();
      throw err;
    }
  }
  return repo;
}

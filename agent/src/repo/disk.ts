/**
 * Repositories on the configured backup disks: the repository lives directly in the disk's
 * folder, its LevelDB catalog in `<state_dir>/cache/<repo id>`.
 */
import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';
import type { AgentConfig } from '../config.js';
import { DirStore } from '../store/dir-store.js';
import { createLocalKey, readLocalKey } from '../crypto/local-key.js';
import { Repository, type Unlock } from './repository.js';

export type RepoConfigPart = Pick<AgentConfig, 'key_file' | 'state_dir' | 'recovery_public_key'>;

export function cacheDir(cfg: Pick<AgentConfig, 'state_dir'>): string {
  return join(cfg.state_dir, 'cache');
}

/** Creates the repository on `disk` unless it exists, creating the local key file if missing; returns its id. */
export async function createDiskRepository(disk: string, cfg: RepoConfigPart): Promise<{ id: string; created: boolean }> {
  const localKey = await createLocalKey(cfg.key_file);
  const store = new DirStore(disk);
  const existed = await store.has('config', 'config').catch(() => false);
  await store.init();
  const id = await Repository.create(store, { localKey, recoveryPublicKey: cfg.recovery_public_key });
  await mkdir(cacheDir(cfg), { recursive: true });
  // prove the local key opens it (an existing repository may belong to another key)
  const repo = await Repository.open(store, { localKey }, { label: disk });
  await repo.close();
  return { id, created: !existed };
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
  return Repository.open(new DirStore(disk), u, { cacheDir: cacheDir(cfg), label: disk });
}

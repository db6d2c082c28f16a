/** Test-only: a fresh repository on a DirStore in os.tmpdir(), with its keys. */
import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirStore } from '../store/dir-store.js';
import { Repository } from './repository.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';
import { onTestFinished } from 'vitest';

export interface TestRepo {
  dir: string;
  store: DirStore;
  repo: Repository;
  localKey: Buffer;
  recovery: { publicKey: string; privateKey: string };
  cacheDir: string;
  reopen(): Promise<Repository>;
}

let recovery: { publicKey: string; privateKey: string } | undefined;

export async function tempDir(prefix = 'mv-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function testRepo(): Promise<TestRepo> {
  const dir = await tempDir('mv-repo-');
  const store = new DirStore(join(dir, 'repo'));
  await store.init();
  const localKey = randomBytes(32);
  recovery ??= await generateRecoveryKeyPair();
  await Repository.create(store, { localKey, recoveryPublicKey: recovery.publicKey });
  const cacheDir = join(dir, 'cache');
  const t: TestRepo = {
    dir,
    store,
    localKey,
    recovery,
    cacheDir,
    repo: await Repository.open(store, { localKey }, { cacheDir, label: store.root }),
    async reopen() {
      await t.repo.close();
      t.repo = await Repository.open(store, { localKey }, { cacheDir, label: store.root });
      return t.repo;
    },
  };
  // Closed when the test ends, so its cached pack handles are not left to the garbage collector
  // (Node warns, DEP0137). Made outside a test (beforeAll), it is the caller's to close.
  try {
    onTestFinished(() => t.repo.close().catch(() => undefined));
  } catch {}
  return t;
}

/** Flips one byte in the middle of the largest pack under `repoDir` (a bit rotten at rest); returns the pack's path. */
export function flipByteInLargestPack(repoDir: string): string {
  const packs = readdirSync(join(repoDir, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  const pack = packs.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  const fd = openSync(pack, 'r+');
  try {
    const b = Buffer.alloc(1);
    const at = Math.floor(statSync(pack).size / 2);
    readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x01;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
  return pack;
}

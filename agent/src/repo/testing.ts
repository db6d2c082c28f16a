/** Test-only: a fresh repository on a DirStore in os.tmpdir(), with its keys. */
import { mkdtemp } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirStore } from '../store/dir-store.js';
import { Repository } from './repository.js';
import { generateRecoveryKeyPair } from '../crypto/recovery.js';

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
  return t;
}

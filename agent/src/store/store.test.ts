import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeContract } from './store-contract.js';
import { DirStore } from './dir-store.js';
import { MemStore } from './mem-store.js';

storeContract('MemStore', async () => new MemStore());
storeContract('DirStore', async () => {
  const s = new DirStore(join(await mkdtemp(join(tmpdir(), 'mv-store-')), 'repo'));
  await s.init();
  return s;
});

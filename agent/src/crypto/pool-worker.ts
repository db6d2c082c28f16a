/** The body of one crypto pool thread (pool.ts): answers {seq, op, ...} with {seq, result} or {seq, error}. */
import { parentPort } from 'node:worker_threads';
import type { MedvaultError } from '@medvault/protocol';
import { runTask } from './pool-tasks.js';
import type { PoolRequest } from './pool.js';

parentPort!.postMessage({ ready: true }); // its modules are loaded: the pool may stop doing backup work inline
parentPort!.on('message', (m: PoolRequest) => {
  try {
    const { result, transfer } = runTask(m);
    parentPort!.postMessage({ seq: m.seq, result }, transfer);
  } catch (err) {
    parentPort!.postMessage({ seq: m.seq, error: { code: (err as MedvaultError).code, message: (err as Error).message } });
  }
});

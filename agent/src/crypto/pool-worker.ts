/**
 * The body of one crypto pool thread (pool.ts): answers {seq, op, ...} with [{seq, result} or
 * {seq, error}, ...]. Requests already waiting are taken at once (receiveMessageOnPort) and their
 * answers sent together, up to BATCH at a time and none held past HOLD_MS: each message wakes
 * the main thread, and on this VM a restore's 22,000 one-file answers cost each thread ~1 s of
 * postMessage.
 */
import { parentPort, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { MedvaultError } from '@medvault/protocol';
import { runTask } from './pool-tasks.js';
import type { PoolRequest } from './pool.js';

const BATCH = 8;
/** An answer waits at most this long for others to go with it (the next request may be a big file). */
const HOLD_MS = 2;
const port = parentPort as MessagePort;

function answer(m: PoolRequest): { reply: unknown; transfer: ArrayBuffer[] } {
  try {
    const { result, transfer } = runTask(m);
    return { reply: { seq: m.seq, result }, transfer };
  } catch (err) {
    return { reply: { seq: m.seq, error: { code: (err as MedvaultError).code, message: (err as Error).message } }, transfer: [] };
  }
}

port.postMessage({ ready: true }); // its modules are loaded: the pool may stop doing backup work inline
port.on('message', (first: PoolRequest) => {
  let replies: unknown[] = [];
  let transfer: ArrayBuffer[] = [];
  let since = 0;
  for (let m: PoolRequest | undefined = first; m; m = (receiveMessageOnPort(port)?.message as PoolRequest | undefined)) {
    const a = answer(m);
    if (replies.length === 0) since = performance.now();
    replies.push(a.reply);
    transfer.push(...a.transfer);
    if (replies.length === BATCH || performance.now() - since > HOLD_MS) {
      port.postMessage(replies, transfer);
      [replies, transfer] = [[], []];
    }
  }
  if (replies.length > 0) port.postMessage(replies, transfer);
});

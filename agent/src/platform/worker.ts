/**
 * Starting one of the agent's worker threads (the crypto pool, the off-site fetcher) from its
 * module's name next to the caller: the built .js, or under the tests the TypeScript source,
 * which the thread loads through tsx.
 */
import { Worker } from 'node:worker_threads';

/** A thread running `./<name>.js` (or `.ts`) beside the module `callerUrl` (its import.meta.url). */
export function startWorker(callerUrl: string, name: string, workerData?: unknown): Worker {
  const ts = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}${ts ? '.ts' : '.js'}`, callerUrl);
  if (!ts) return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * @medvault/protocol/worker: requests to a worker thread and its answers, for the agent's off-site
 * fetcher and the controller's off-site verifier (one pattern, both sides). Not part of the
 * package's I/O-free index.
 *
 * A thread runs `./<name>.js` beside the caller's module, or under the tests the TypeScript source
 * through tsx. It is started at the first call, keeps the process alive only while calls are in
 * flight, and when it dies its calls fail (MV_ERR_TRANSPORT_FAILED unless it said otherwise) and
 * the next call starts a fresh one. Errors cross as {code, message} and come back as MedvaultError.
 */
import { parentPort, Worker } from 'node:worker_threads';
import { MedvaultError, codes, type ErrorCode } from './errors.js';

/** A thread running `./<name>.js` (or `.ts`) beside the module `callerUrl` (its import.meta.url). */
export function startWorker(callerUrl: string, name: string, workerData?: unknown): Worker {
  const ts = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}${ts ? '.ts' : '.js'}`, callerUrl);
  if (!ts) return new Worker(url, { workerData });
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

type Reply<R> = { seq: number; result?: R; error?: { code?: ErrorCode; message: string } };

/** The caller's side: `call(request)` resolves with what the thread's `serveCalls` handler returned. */
export class WorkerCalls<Q, R> {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, { w: Worker; resolve: (r: R) => void; reject: (e: Error) => void }>();
  private seq = 0;

  /** `what` names the thread in errors ("off-site fetch thread"). */
  constructor(
    private readonly start: () => Worker,
    private readonly what: string,
  ) {}

  call(request: Q): Promise<R> {
    const w = (this.worker ??= this.started());
    const seq = ++this.seq;
    w.ref();
    return new Promise((resolve, reject) => {
      this.calls.set(seq, { w, resolve, reject });
      w.postMessage({ seq, request });
    });
  }

  /** Ends the thread; its calls fail; the next call starts a new one. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.fail(w, new MedvaultError(codes.TRANSPORT_FAILED, `${this.what}: closed`));
    await w.terminate();
  }

  private started(): Worker {
    const w = this.start();
    w.unref();
    w.on('message', (m: Reply<R>) => {
      const c = this.calls.get(m.seq);
      if (!c) return;
      this.calls.delete(m.seq);
      if (![...this.calls.values()].some((o) => o.w === w)) w.unref();
      if (m.error) c.reject(new MedvaultError(m.error.code ?? codes.TRANSPORT_FAILED, m.error.message));
      else c.resolve(m.result as R);
    });
    const died = (err: Error) => this.fail(w, new MedvaultError(codes.TRANSPORT_FAILED, `${this.what} failed: ${err.message}`, { cause: err }));
    w.on('error', died);
    w.on('exit', (code) => died(new Error(`exited with code ${code}`)));
    return w;
  }

  /** Fails every call of the thread `w` and forgets it. */
  private fail(w: Worker, err: Error): void {
    if (this.worker === w) this.worker = undefined;
    for (const [seq, c] of this.calls) if (c.w === w) (this.calls.delete(seq), c.reject(err));
  }
}

/**
 * The thread's side: answers each request with `handle`'s result (and the buffers it names to
 * transfer rather than copy), or with the error it threw.
 */
export function serveCalls<Q, R>(handle: (request: Q) => Promise<{ result: R; transfer?: ArrayBuffer[] }>): void {
  parentPort!.on('message', (m: { seq: number; request: Q }) => {
    handle(m.request).then(
      ({ result, transfer }) => parentPort!.postMessage({ seq: m.seq, result }, transfer ?? []),
      (err) => parentPort!.postMessage({ seq: m.seq, error: { code: (err as MedvaultError).code, message: (err as Error).message } }),
    );
  });
}

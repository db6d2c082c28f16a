/**
 * Starts a real nats-server with JetStream on a free loopback port, for tests and the demo.
 * The server can be stopped (SIGTERM/SIGKILL), paused (SIGSTOP) and started again on the same port
 * and store directory, so tests can cut the link and bring it back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class NatsServer {
  private child: ChildProcess | undefined;
  private log = '';
  private constructor(readonly port: number, readonly storeDir: string, private readonly extraArgs: string[], private readonly config?: string) {}

  /**
   * Starts a server on a free port (or `port`) with its own JetStream store directory. With
   * `config`, the server runs that configuration file (which then carries `jetstream { store_dir }`,
   * TLS and authorization); only the address and port are overridden.
   */
  static async start(opts: { port?: number; storeDir?: string; args?: string[]; config?: string } = {}): Promise<NatsServer> {
    const s = new NatsServer(
      opts.port ?? (await freePort()),
      opts.storeDir ?? mkdtempSync(join(tmpdir(), 'mv-nats-')),
      opts.args ?? [],
      opts.config,
    );
    await s.restart();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get output(): string {
    return this.log;
  }

  /** (Re)starts the process on the same port and store. */
  async restart(): Promise<void> {
    if (this.running) throw new Error('nats-server is still running');
    const base = this.config ? ['-c', this.config] : ['-js', '-sd', this.storeDir];
    const child = spawn('nats-server', [...base, '-a', '127.0.0.1', '-p', String(this.port), ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    child.on('error', (err) => (this.log += `spawn error: ${err.message}\n`));
    this.child = child;
    await waitForPort(this.port, 10_000);
  }

  /** Stops the process (SIGTERM, or SIGKILL with `hard`) and waits for it to exit. */
  async stop(hard = false): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGCONT');
    child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server and deletes its store. */
  async dispose(): Promise<void> {
    await this.stop(true);
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

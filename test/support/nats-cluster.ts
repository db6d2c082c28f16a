/**
 * A real three-node NATS cluster on loopback for tests: each node's configuration is made from the
 * controller's generated single-server configuration by deploy/nats-cluster/node-config.sh (as an
 * operator would), with its own client, route and monitoring ports and its own JetStream store.
 * Nodes can be killed and restarted one by one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NatsServer, freePort } from './nats-server.js';
import { ROOT } from './procs.js';

export interface ClusterNode {
  name: string;
  server: NatsServer;
  clientPort: number;
  routePort: number;
  monitorPort: number;
}

export class NatsCluster {
  private constructor(readonly nodes: ClusterNode[]) {}

  /** Free ports for `size` nodes (client, route, monitoring), chosen before the configurations are written. */
  static async plan(size = 3): Promise<Omit<ClusterNode, 'server'>[]> {
    const ports = [];
    for (let i = 0; i < size; i++) ports.push({ name: `n${i + 1}`, clientPort: await freePort(), routePort: await freePort(), monitorPort: await freePort() });
    return ports;
  }

  /** Starts the planned nodes from `baseConfig` (made by `medvault-controller nats-config`) under `dir`. */
  static async start(dir: string, baseConfig: string, ports: Omit<ClusterNode, 'server'>[]): Promise<NatsCluster> {
    const nodes: ClusterNode[] = [];
    try {
      for (const p of ports) {
        const store = join(dir, p.name, 'js');
        mkdirSync(store, { recursive: true });
        const conf = join(dir, p.name, 'nats-server.conf');
        const routes = ports.filter((q) => q !== p).flatMap((q) => ['--route', `127.0.0.1:${q.routePort}`]);
        const text = execFileSync('bash', [join(ROOT, 'deploy', 'nats-cluster', 'node-config.sh'), baseConfig, '--name', p.name, '--cluster', `127.0.0.1:${p.routePort}`, ...routes, '--store-dir', store, '--monitor', `127.0.0.1:${p.monitorPort}`], { encoding: 'utf8' });
        writeFileSync(conf, text);
        nodes.push({ ...p, server: await NatsServer.start({ port: p.clientPort, storeDir: store, config: conf }) });
      }
    } catch (err) {
      for (const n of nodes) await n.server.stop(true);
      throw err;
    }
    const c = new NatsCluster(nodes);
    await c.waitHealthy();
    return c;
  }

  /** Client URLs of every node (`tls://` for the secure setup). */
  urls(scheme: 'nats' | 'tls' = 'tls'): string[] {
    return this.nodes.map((n) => `${scheme}://127.0.0.1:${n.clientPort}`);
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Waits until every running node reports JetStream healthy (/healthz: meta leader known, streams current). */
  async waitHealthy(timeoutMs = 30_000, nodes = this.nodes): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const n of nodes) {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${n.monitorPort}/healthz`).then((r) => r.ok, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`NATS node ${n.name} not healthy within ${timeoutMs} ms:\n${n.server.output.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** The stream's leader and replicas as a running node's monitoring endpoint reports them. */
  async streamCluster(stream: string): Promise<{ leader?: string; replicas: { name: string; current: boolean }[] }> {
    for (const n of this.nodes) {
      if (!n.server.running) continue;
      const jsz = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz?accounts=true&streams=true`).then((r) => r.json() as Promise<any>, () => undefined);
      for (const acc of jsz?.account_details ?? []) {
        for (const s of acc.stream_detail ?? []) {
          if (s.name === stream && s.cluster) return { leader: s.cluster.leader, replicas: (s.cluster.replicas ?? []).map((r: any) => ({ name: r.name, current: r.current })) };
        }
      }
    }
    return { replicas: [] };
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) await n.server.stop();
  }
}

/**
 * The agent daemon keeps taking orders after its NATS server restarts (secure fleet, real
 * processes): nats-server stopped, down 3 s, restarted on the same store forgets the daemon's
 * memory-stored control consumer; the daemon's follower notices and makes a new one from where it
 * was, so a restore ordered after the restart is carried out and verified.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fleet, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

describe('orders after a nats-server restart', () => {
  let fleet: Fleet;
  const ws = useFleet('restart', async (ws, start) => {
    mkdirSync(join(ws, 'records'), { recursive: true });
    mkdirSync(join(ws, 'restore'), { recursive: true });
    writeFileSync(join(ws, 'records', 'a.txt'), 'hello after the restart\n');
    fleet = await start({ site: 'clinic-restart', store: join(ws, 'records') });
    must(await fleet.agent('backup', 'records'), 'backup');
    fleet.startAgent();
    await fleet.agentDaemon!.waitFor(/agent running/);
    await fleet.login();
  }, 300_000);

  const restore = async (name: string) => {
    const r = await fleet.medvault(['restore', '--site', fleet.site, '--snapshot', 'latest', '--path', 'a.txt', '--target', join(ws, 'restore', name), '--timeout', '120']);
    return { code: r.code, state: (r.json as { state?: string } | undefined)?.state, out: `${r.stdout}${r.stderr}` };
  };

  it('a restore ordered after the server was stopped 3 s and restarted is carried out', async () => {
    const before = await restore('before');
    expect(before.state, before.out).toBe('done');
    await fleet.nats.stop();
    await new Promise((r) => setTimeout(r, 3000));
    await fleet.nats.restart();
    // The controller's own requests may time out while the restarted server recovers its streams.
    const after = await until('the restore after the restart', async () => {
      const r = await restore('after');
      return /cannot reach the controller/.test(r.out) ? undefined : r;
    }, 180_000, 2000);
    expect(after.state, `${after.out}\n${fleet.agentDaemon!.output.slice(-3000)}`).toBe('done');
    expect(readFileSync(join(ws, 'restore', 'after', 'a.txt'), 'utf8')).toBe('hello after the restart\n');
  }, 300_000);
});

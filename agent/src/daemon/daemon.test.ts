/**
 * The daemon's control-follower health tied to the systemd watchdog: a follower silent far past
 * its own re-creation while the link is connected withholds WATCHDOG=1; NATS simply down does not.
 * And its saved control cursor never passes an order not yet handled.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKey, makeOrder, subjects } from '@medvault/protocol';
import { testRepo, tempDir } from '../repo/testing.js';
import { MemLink } from '../replicate/mem-link.js';
import { ReceiptBook } from '../replicate/receipts.js';
import { Spool } from '../replicate/spool.js';
import { FOLLOW_STALL_MS } from '../replicate/link.js';
import { OrderLedger } from '../orders/ledger.js';
import { OrderRunner, type RestoreEngine } from '../orders/runner.js';
import { Watchdog, systemdNotifier } from '../platform/systemd.js';
import { Archiver } from '../backup/archiver.js';
import { AgentDaemon, FOLLOWER_DEAD_MS, daemonRepo } from './daemon.js';

const site = 'clinic-a';
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** A daemon on a MemLink; `engine` and `restoreRoots` for its order runner (default: it accepts no order). */
async function setup(o: { engine?: RestoreEngine; restoreRoots?: string[] } = {}) {
  const dir = await tempDir('mv-daemon-');
  const t = await testRepo();
  const link = new MemLink();
  const key = generateSigningKey();
  let now = Date.UTC(2026, 11, 3, 12);
  const clock = { now: () => now, advance: (ms: number) => void (now += ms) };
  const logged: { level: string; msg: string }[] = [];
  const engine = o.engine;
  const runner = new OrderRunner({
    site, controllerKey: key.publicKey, ledger: OrderLedger.open(join(dir, 'state'), undefined, now - 60_000), engine: () => engine,
    restoreRoots: o.restoreRoots ?? [], report: () => {}, log: () => {}, now: clock.now,
  });
  const daemon = new AgentDaemon({
    site, version: 'test', stateDir: join(dir, 'state'), repo: daemonRepo(t.repo, t.store.root), link, book: ReceiptBook.open(join(dir, 'state')),
    spool: new Spool(join(dir, 'state'), site), runner, controllerKey: key.publicKey, now: clock.now,
    log: (level, msg) => void logged.push({ level, msg }), tickMs: 3_600_000, heartbeatMs: 10,
  });
  // The watchdog as `medvault-agent run` wires it, on a notifier whose datagrams are kept.
  const sent: string[] = [];
  const watchdog = new Watchdog(systemdNotifier({ NOTIFY_SOCKET: '@mv-test', WATCHDOG_USEC: '60000000' }, process.pid, (_s, m) => sent.push(m)), [], clock.now);
  watchdog.addCheck('control', () => daemon.followerProblem());
  daemon.start();
  stops.push(() => daemon.stop());
  return { dir, key, link, clock, daemon, watchdog, sent, logged, repo: t.repo };
}

describe('daemon: control follower health and the systemd watchdog', () => {
  it('withholds WATCHDOG=1 once the follower is silent past 3x its stall limit while connected, and names it', async () => {
    const s = await setup();
    expect(FOLLOWER_DEAD_MS).toBe(3 * FOLLOW_STALL_MS);
    expect(s.watchdog.check()).toBe(true);
    // Silent, but within what its own re-creation may take: still healthy.
    s.clock.advance(2.5 * FOLLOW_STALL_MS);
    s.link.followerSilentMs = 2.5 * FOLLOW_STALL_MS;
    expect(s.daemon.followerProblem()).toBeUndefined();
    expect(s.watchdog.check()).toBe(true);
    // The daemon's round logs it at twice the stall limit, without failing the watchdog.
    await s.daemon.tick();
    expect(s.logged.some((l) => l.level === 'error' && /follower silent/.test(l.msg))).toBe(true);
    s.clock.advance(FOLLOW_STALL_MS);
    s.link.followerSilentMs = 3.5 * FOLLOW_STALL_MS;
    expect(s.watchdog.check()).toBe(false);
    expect(s.sent.at(-1)).toBe('STATUS=unhealthy: control stream follower silent for 420 s while connected (orders, receipts and requests are not arriving)');
    // It hears from its consumer again: healthy at the next round.
    s.link.followerSilentMs = 0;
    expect(s.watchdog.check()).toBe(true);
    expect(s.sent.at(-1)).toBe('WATCHDOG=1\nSTATUS=running');
    expect(s.sent.filter((m) => m.startsWith('WATCHDOG=1'))).toHaveLength(3);
  });

  it('keeps feeding the watchdog while NATS is down, and counts silence only from the reconnect', async () => {
    const s = await setup();
    s.link.down = true;
    s.clock.advance(10 * FOLLOW_STALL_MS);
    s.link.followerSilentMs = 10 * FOLLOW_STALL_MS;
    expect(s.watchdog.check()).toBe(true);
    // Back up: the follower has not heard anything yet, but the link was down all that time.
    s.link.down = false;
    expect(s.watchdog.check()).toBe(true);
    s.clock.advance(FOLLOWER_DEAD_MS);
    expect(s.watchdog.check()).toBe(true);
    s.clock.advance(1000);
    s.link.followerSilentMs += FOLLOWER_DEAD_MS + 1000;
    expect(s.watchdog.check()).toBe(false);
    expect(s.sent.filter((m) => m.startsWith('WATCHDOG=1'))).toHaveLength(3);
    expect(s.sent.at(-1)).toMatch(/^STATUS=unhealthy: control stream follower silent for 361 s while connected/);
  });
});

describe('daemon: the control cursor and orders', () => {
  it('saves the cursor no further than an order still being carried out, and past it once it is handled', async () => {
    let finish: () => void = () => {};
    const restoring = new Promise<void>((r) => (finish = r));
    const engine: RestoreEngine = { restore: async () => (await restoring, { snapshot: 'f'.repeat(64), files: 1, bytes: 1, verified: 1, failed: [] }) };
    const roots = join(await tempDir('mv-daemon-roots-'), 'restore');
    mkdirSync(roots);
    const s = await setup({ engine, restoreRoots: [roots] });
    stops.unshift(async () => finish()); // a failed expectation must not leave the daemon's stop waiting on the restore
    // Where a restarted daemon follows from (1 without a cursor file).
    const cursor = () => (existsSync(join(s.dir, 'state', 'control.cursor')) ? Number(readFileSync(join(s.dir, 'state', 'control.cursor'), 'utf8')) : 1);
    const order = makeOrder({ site, snapshot: 'latest', paths: [], target: join(roots, 'out'), source: 'local', mode: 'new', requestedBy: { user: 'tech1', mfa: true } }, s.key, s.clock.now());
    await s.link.publish(subjects.control(site, 'order'), Buffer.from(JSON.stringify(order)), { msgID: 'order' });
    // Control messages after it (here a receipt that is refused) move the follower on meanwhile.
    await s.link.publish(subjects.control(site, 'receipt'), Buffer.from('{}'), { msgID: 'receipt' });
    await new Promise((r) => setTimeout(r, 50));
    await s.daemon.tick();
    expect(cursor()).toBe(1); // the order's sequence: after a crash now it is delivered again
    finish();
    await new Promise((r) => setTimeout(r, 50));
    await s.daemon.tick();
    expect(cursor()).toBe(3);
    expect(s.logged.map((l) => l.msg)).toContain('order done');
  });

  it("announces a snapshot whose tag is longer than the needs message takes (cut to 100), and the round goes on to flush", async () => {
    const s = await setup();
    const src = await tempDir('mv-daemon-src-');
    writeFileSync(join(src, 'a.txt'), 'alpha');
    await new Archiver(s.repo).backup({ store: 'records', source: src, job: 'full', tags: ['t'.repeat(150), 'legal-hold'] });
    await s.daemon.tick();
    expect(s.logged.filter((l) => l.level === 'warn')).toEqual([]);
    const needs = s.link.messages.filter((m) => m.subject === subjects.event(site, 'needs')).map((m) => JSON.parse(Buffer.from(m.data).toString()));
    expect(needs.map((n) => n.tags)).toEqual([['t'.repeat(100), 'legal-hold']]);
  });
});

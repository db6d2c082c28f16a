/**
 * Restore orders cut short by kill -9 of the agent daemon (real TLS nats-server, controller and
 * agent processes). What the agent keeps of an order — its ledger (orders.jsonl), its log lines,
 * its audit trail — must say the same outcome as what the controller received (the order's final
 * status and the backup log), and no order is carried out twice:
 *   (a) killed mid-restore: the agent, started again, concludes the order failed (the target may
 *       hold a partial restore) and, when the control stream delivers it again, says 'failed' too;
 *   (b) killed by a fault point at each line the order ledger writes for one order (accepted,
 *       outcome, reported): whichever the kill came before, both sides agree;
 *   (c) killed mid-drill: the agent, started again, records the drill interrupted and the
 *       controller gets it failed with the reason (it no longer waits for a result that never comes).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it, onTestFailed } from 'vitest';
import { Fleet, must } from '../support/fleet.js';
import { until, type Daemon } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

describe('restore and drill orders interrupted by kill -9 of the agent', () => {
  let fleet: Fleet;
  const ws = useFleet('order-kill', async (ws, start) => {
    const records = join(ws, 'records');
    mkdirSync(records, { recursive: true });
    mkdirSync(join(ws, 'restore'), { recursive: true });
    // 100 MiB, so a restore of everything is still running when the agent is killed just after accepting it.
    for (let i = 0; i < 100; i++) writeFileSync(join(records, `scan-${i}.dcm`), randomBytes(1024 * 1024));
    fleet = await start({ site: 'clinic-kill', store: records });
    must(await fleet.agent('backup', 'records'), 'backup');
    await fleet.runAgent();
    await fleet.login();
  }, 300_000);
  const state = join(ws, 'appliance', 'state');

  /** The order ledger's lines for `id`. */
  const ledger = (id: string) => readFileSync(join(state, 'orders.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.id === id);

  /** Sends a restore order of `path` into restore/`target` without waiting; its id. */
  const order = async (path: string, target: string) => must(await fleet.medvault(['restore', '--site', fleet.site, '--snapshot', 'latest', '--path', path, '--target', join(ws, 'restore', target), '--no-wait']), 'medvault restore --no-wait').id as string;

  const finalView = (id: string) => until(`order ${id} final at the controller`, async () => {
    const v = await fleet.api(`/api/v1/orders/${id}`);
    return v.final ? v : undefined;
  }, 120_000, 500);

  /**
   * Everything the agent's daemons (`agents`, in order) said and keep of order `id` agrees with the
   * controller's final state, which it returns: ledger outcome, log lines, audit trail, backup log.
   */
  async function expectAgreement(id: string, agents: Daemon[]): Promise<string> {
    const view = await finalView(id);
    const seq = ledger(id).find((e) => e.seq !== undefined)?.seq;
    // After a kill, the control stream delivers the order again: the daemon says what it made of it.
    if (seq !== undefined) await agents.at(-1)!.waitFor(new RegExp(`"seq":${seq},`), 60_000);
    const output = agents.map((a) => a.output).join('\n');
    const diagnosis = `${JSON.stringify(view.history)}\n${agents.map((a, i) => `--- agent ${i + 1} ---\n${a.output.slice(-2500)}`).join('\n')}`;
    const lines = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    for (const l of lines.filter((x) => x.seq === seq && /^order /.test(x.msg))) expect(l.state, `${l.msg}\n${diagnosis}`).toBe(view.state);
    for (const l of lines.filter((x) => /^orders interrupted/.test(x.msg) && x.orders.includes(id))) expect(view.state, `${l.msg}\n${diagnosis}`).toBe('failed');
    // The order ledger records the outcome the controller received, once (an order never accepted has none).
    const ended = ledger(id).filter((e) => e.finished).map((e) => e.outcome?.state);
    expect(ended, JSON.stringify(ledger(id))).toEqual(seq === undefined ? [] : [view.state]);
    // The audit trail: accepted once, ended as the controller says (the record may stand twice after a kill while reporting).
    const exported = await fleet.agent('audit', 'export', '--format', 'json');
    must(exported, 'medvault-agent audit export');
    const audit = (JSON.parse(exported.stdout).entries as { action: string; object: string; result: string }[]).filter((e) => e.object === `order:${id}`);
    const result = view.state === 'done' ? 'ok' : 'failed';
    expect(audit.filter((e) => e.action === 'order.accept').length, diagnosis).toBe(1);
    expect([...new Set(audit.filter((e) => e.action === 'restore').map((e) => e.result))], diagnosis).toEqual([result]);
    // The controller's backup log (SOP 5.1) has the restore job once, as the order ended, by the technician.
    const log = await until(`order ${id} in the backup log`, async () => {
      const e = ((await fleet.api(`/api/v1/log?site=${fleet.site}&type=restore`)).entries as { orderId?: string; result: string; actor: { id: string } }[]).filter((x) => x.orderId === id);
      return e.length > 0 ? e : undefined;
    }, 30_000, 500);
    expect(log.map((e) => [e.result, e.actor.id]), diagnosis).toEqual([[result, 'tech']]);
    return view.state;
  }

  it('(a) killed mid-restore: failed on both sides, and the redelivered order is not carried out again', async () => {
    const id = await order('', 'cut');
    await until('the order accepted in the ledger', () => ledger(id).find((e) => e.seq !== undefined), 60_000, 5);
    const killed = fleet.agentDaemon!;
    await killed.stop('SIGKILL');
    expect(ledger(id).filter((e) => e.finished), 'the kill came after the restore ended: it must come mid-restore').toEqual([]);
    const again = fleet.startAgent();
    expect(await expectAgreement(id, [killed, again])).toBe('failed');
    const view = await finalView(id);
    expect(view.reason.message).toMatch(/the agent stopped \(crash or power loss\) while carrying it out/);
  }, 300_000);

  it('(b) killed before each line the ledger writes for an order: the same outcome on both sides', async () => {
    await fleet.agentDaemon!.stop();
    const outcomes: string[] = [];
    for (let at = 1; ; at++) {
      // The fault point fires before the at-th ledger line this daemon writes: all are this order's.
      const faulty = await fleet.runAgent({ MEDVAULT_FAULTS: `match=orders.jsonl,at=${at}` });
      const id = await order('scan-1.dcm', `point-${at}`);
      const killedHere = await until('the agent killed, or the order final', async () => (!faulty.running ? true : (await fleet.api(`/api/v1/orders/${id}`)).final ? false : undefined), 120_000, 200);
      const agents = [faulty];
      if (killedHere) agents.push(fleet.startAgent());
      outcomes.push(`${killedHere ? `killed before ledger line ${at}` : 'not killed'}: ${await expectAgreement(id, agents)}`);
      await fleet.agentDaemon!.stop();
      if (!killedHere) break;
      expect(at, 'more ledger lines for one order than expected').toBeLessThan(6);
    }
    // Accepted, outcome and reported: three points where a kill leaves work for the next start.
    expect(outcomes).toEqual(['killed before ledger line 1: done', 'killed before ledger line 2: failed', 'killed before ledger line 3: done', 'not killed: done']);
    fleet.startAgent();
  }, 600_000);

  it('(c) killed mid-drill: interrupted in the drill ledger, failed with the reason at the controller', async () => {
    // exit 5 with --no-wait: sent, its result still to come
    const sent = await fleet.medvault(['drill', fleet.site, '--store', 'records', '--source', 'local', '--no-wait']);
    const id = (sent.json as { drills?: { id: string }[] } | undefined)?.drills?.[0]?.id;
    expect(id, sent.stderr).toBeDefined();
    const drills = (): { seq?: number; finished?: true; outcome: { state: string } }[] => readFileSync(join(state, 'drills.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.id === id);
    await until('the drill accepted in its ledger', () => drills().find((e) => e.seq !== undefined), 60_000, 5);
    const killed = fleet.agentDaemon!;
    await killed.stop('SIGKILL');
    expect(drills().filter((e) => e.finished), 'the kill came after the drill ended: it must come mid-drill').toEqual([]);
    const again = fleet.startAgent();
    onTestFailed(() => console.log(`--- killed agent\n${killed.output.slice(-3000)}\n--- agent started again\n${again.output.slice(-5000)}\n--- fleet\n${fleet.output().slice(-5000)}`));
    const view = await until(`drill ${id} concluded at the controller`, async () => {
      const v = await fleet.api(`/api/v1/drills/${id}`);
      return v.state !== 'issued' ? v : undefined;
    }, 120_000, 500);
    expect(view.state, again.output.slice(-2000)).toBe('failed');
    expect(view.result.error.message).toBe(`drill ${id}: the agent stopped (crash or power loss) while running it; order it again`);
    expect(view.result.runs).toEqual([]);
    expect(drills().filter((e) => e.finished).map((e) => e.outcome.state)).toEqual(['interrupted']);
    expect((await again.waitFor(/"drills":\[([^\]]*)\],"msg":"drills interrupted by the last stop"/))[1]).toBe(`"${id}"`);
  }, 300_000);
});

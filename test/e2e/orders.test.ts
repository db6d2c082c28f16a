/**
 * Restore orders against a running agent over a real nats-server: a genuine order is carried out
 * once; forged, altered, expired, replayed and other-site orders are refused by the agent, which
 * says why in its order status, and no file in the target changes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import {
  canonicalJson, codes, decode, generateSigningKey, importSigningKey, makeOrder, signMessage, streams, subjects,
  type OrderRequest, type OrderStatus, type RestoreOrder,
} from '@medvault/protocol';
import { Fleet, must } from '../support/fleet.js';
import { until } from '../support/procs.js';
import { fingerprint } from '../support/records.js';
import { useFleet } from '../support/use-fleet.js';

describe('restore orders over NATS', () => {
  let fleet: Fleet;
  let nc: NatsConnection;
  const statuses = new Map<string, OrderStatus[]>();
  let target: string;

  const ws = useFleet('orders', async (ws, start) => {
    const store = join(ws, 'clinic', 'records');
    mkdirSync(join(store, 'fhir'), { recursive: true });
    writeFileSync(join(store, 'fhir', 'patient.json'), '{"resourceType":"Patient","id":"p1"}');
    target = join(ws, 'restore', 'out');
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'keep.txt'), 'untouched');
    fleet = await start({ site: 'clinic-orders', store });
    must(await fleet.agent('backup', 'records', '--full'), 'backup');
    fleet.startAgent();
    nc = await connect(fleet.natsOptions());
    const js = jetstream(nc);
    const consumer = await js.consumers.get(streams.events.name, { filter_subjects: subjects.event(fleet.site, 'status') });
    void (async () => {
      for await (const m of await consumer.consume()) {
        const s = decode(m.data, 'mv.order-status.v1');
        statuses.set(s.orderId, [...(statuses.get(s.orderId) ?? []), s]);
      }
    })();
  }, 60_000);

  afterAll(() => nc?.close());

  const request = (): OrderRequest => ({
    site: fleet.site, snapshot: 'latest', paths: [], target, source: 'local', mode: 'new', requestedBy: { user: 'attacker', mfa: false },
  });
  const controllerKey = () => importSigningKey(readFileSync(join(ws, 'controller', 'controller.key'), 'utf8'));
  const publish = async (order: unknown) => {
    await jetstream(nc).publish(subjects.control(fleet.site, 'order'), typeof order === 'string' ? order : canonicalJson(order));
  };
  const finalState = (id: string) =>
    until(`a final status for order ${id}`, () => statuses.get(id)?.find((s) => ['refused', 'done', 'failed'].includes(s.state)), 30_000);

  it('carries out a genuine order once and refuses the same order replayed', async () => {
    await fleet.login();
    const r = await fleet.medvault(['restore', '--site', fleet.site, '--snapshot', 'latest', '--path', 'fhir', '--target', target]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(target, 'fhir', 'patient.json'), 'utf8')).toContain('Patient');
    // The order as the controller published it, sent again as a new message.
    const js = jetstream(nc);
    const msg = await (await js.streams.get(streams.control.name)).getMessage({ last_by_subj: subjects.control(fleet.site, 'order') });
    const order = JSON.parse(Buffer.from(msg!.data).toString()) as RestoreOrder;
    await publish(order);
    await until('the replay refusal', () => statuses.get(order.id)?.find((s) => s.state === 'refused'));
    expect(statuses.get(order.id)!.find((s) => s.state === 'refused')!.reason!.code).toBe(codes.ORDER_REPLAYED);
  }, 60_000);

  it('refuses forged, altered, expired and other-site orders, saying why, and touches no file', async () => {
    const before = fingerprint(join(ws, 'restore'));
    const key = controllerKey();
    const now = Date.now();
    const genuine = makeOrder(request(), key, now);
    const cases: [string, RestoreOrder, string][] = [
      ['forged', makeOrder(request(), generateSigningKey(), now), codes.SIGNATURE_INVALID],
      ['altered', { ...genuine, target: join(ws, 'restore', 'elsewhere') }, codes.SIGNATURE_INVALID],
      ['unsigned', { ...genuine, sig: undefined } as RestoreOrder, codes.SIGNATURE_INVALID],
      ['expired', makeOrder(request(), key, now - 60 * 60_000), codes.ORDER_EXPIRED],
      ['other site', makeOrder({ ...request(), site: 'clinic-other' }, key, now), codes.ORDER_SITE],
      ['too long-lived', signMessage({ ...makeOrder(request(), key, now), expiresAt: now + 7 * 24 * 3600_000 }, key), codes.ORDER_LIFETIME],
      ['outside restore roots', makeOrder({ ...request(), target: join(ws, 'clinic') }, key, now), codes.ORDER_TARGET],
    ];
    for (const [, order] of cases) await publish(order);
    await publish('{"type":"mv.restore-order.v1","id":"not json');
    for (const [what, order, code] of cases) {
      const s = await finalState(order.id);
      expect(s.state, what).toBe('refused');
      expect(s.reason?.code, what).toBe(code);
      expect(s.reason!.message.length, what).toBeGreaterThan(10);
    }
    expect(fingerprint(join(ws, 'restore'))).toEqual(before);
    expect(fleet.agentDaemon!.running).toBe(true);
    // The agent is still serving: a fresh genuine order runs.
    const again = makeOrder({ ...request(), paths: ['fhir'], target: join(ws, 'restore', 'second') }, key, Date.now());
    await publish(again);
    expect((await finalState(again.id)).state).toBe('done');
  }, 90_000);
});

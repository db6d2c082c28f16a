/**
 * NATS servers named by IP address (servers = ["tls://127.0.0.1:PORT"]), against real nats-servers
 * whose certificates deploy/make-ca.sh made without naming localhost: one names 127.0.0.1 and must
 * be accepted by the controller, the agent's link and doctor's TLS check alike; one names another
 * IP only and must be refused by all three, the error saying which address the certificate lacks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNats } from '../../controller/src/nats.js';
import { openLink } from '../../agent/src/replicate/link.js';
import { probeNats } from '../../agent/src/doctor/host.js';
import { startSecureNats, type SecureNats } from '../support/secure-nats.js';

const SITE = 'clinic-a';
let dir: string;
let good: SecureNats;
let wrong: SecureNats;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mv-tlsip-'));
  good = await startSecureNats(join(dir, 'good'), [SITE], ['nats.example.org', '127.0.0.1']);
  wrong = await startSecureNats(join(dir, 'wrong'), [SITE], ['nats.example.org', '10.0.0.5']);
});

afterAll(async () => {
  await good?.server.dispose();
  await wrong?.server.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the error of a refused promise; fails the test if it was accepted. */
async function refused(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('accepted, but should have been refused');
}

describe('a NATS server named by its IP address', () => {
  it('is reached over verified TLS when its certificate names that IP', async () => {
    const ctl = await openNats({ servers: [good.url], nkeySeedFile: good.controllerSeedFile, caFile: good.caFile });
    try {
      await ctl.ensureStreams();
      const link = await openLink({ servers: [good.url], name: 'tls-ip agent', site: SITE, nkeySeedFile: good.siteSeedFile[SITE]!, caFile: good.caFile, failFast: true });
      expect(link.connected).toBe(true);
      await link.close();
    } finally {
      await ctl.close();
    }
    expect((await probeNats(good.url, good.caFile)).tls).toMatchObject({ ok: true, subject: 'nats.example.org' });
  });

  it('is refused, by every program alike, when its certificate names another IP only', async () => {
    const mismatch = "IP: 127.0.0.1 is not in the cert's list: 10.0.0.5";
    const ctl = await refused(openNats({ servers: [wrong.url], nkeySeedFile: wrong.controllerSeedFile, caFile: wrong.caFile }));
    expect(ctl.code).toBe('MV_ERR_TRANSPORT_FAILED');
    expect(ctl.message).toBe(`cannot connect to NATS at ${wrong.url}: Hostname/IP does not match certificate's altnames: ${mismatch}`);
    const link = await refused(openLink({ servers: [wrong.url], name: 'tls-ip agent', site: SITE, nkeySeedFile: wrong.siteSeedFile[SITE]!, caFile: wrong.caFile, failFast: true }));
    expect(link.code).toBe('MV_ERR_TRANSPORT_FAILED');
    expect(link.message).toBe(`cannot connect to NATS at ${wrong.url}: Hostname/IP does not match certificate's altnames: ${mismatch}`);
    expect((await probeNats(wrong.url, wrong.caFile)).tls).toEqual({ ok: false, error: `Hostname/IP does not match certificate's altnames: ${mismatch}` });
  });
});

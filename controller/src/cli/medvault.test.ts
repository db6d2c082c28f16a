import { execFile } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, streams } from '@medvault/protocol';
import { totpCode } from '../auth/totp.js';
import { SITE, heartbeat, publishEvent, startFixture, type Fixture } from '../fixture.test-support.js';

const CLI = fileURLToPath(new URL('./medvault.ts', import.meta.url));
const PASSWORD = 'correct horse battery staple';
const FORGED = 'a\norder o1 done: all files verified';
const TITLE = '\u001b]0;pwned\u0007x';

function medvault(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!);

describe('medvault CLI against a controller', () => {
  let f: Fixture;
  let env: Record<string, string>;
  let secret = '';
  beforeAll(async () => {
    f = await startFixture({ ingest: false });
    f.now.value = Date.now();
    secret = (await f.app.users.add('tess', 'technician', PASSWORD, f.now.value)).totpSecret;
    await publishEvent(f, SITE, 'heartbeat', heartbeat(SITE, f.now.value));
    env = { MEDVAULT_SESSION: join(mkdtempSync(join(tmpdir(), 'mv-cli-')), 'session.json') };
    // A stand-in agent: answers every order with accepted → running → done, or refuses /etc; for
    // /srv/forged it acts as a compromised agent would: control characters in what it reports.
    await f.nats.bus.tail(streams.control.name, (m) => {
      if (!m.subject.endsWith('.order')) return;
      const o = decode(m.data, 'mv.restore-order.v1');
      const at = Date.now();
      const base = { type: 'mv.order-status.v1', orderId: o.id, site: o.site, at };
      const steps = o.target === '/srv/forged'
        ? [{ ...base, state: 'done', result: { snapshot: 'ab'.repeat(32), files: 2, bytes: 10, verified: 0, failed: [FORGED, TITLE] } }]
        : o.target === '/srv/forged-refusal'
        ? [{ ...base, state: 'refused', reason: { code: 'MV_ERR_ORDER_TARGET', message: `no\u001b[2J${FORGED}` } }]
        : o.target.startsWith('/etc')
        ? [{ ...base, state: 'refused', reason: { code: 'MV_ERR_ORDER_TARGET', message: 'target outside restore_roots' } }]
        : [
            { ...base, state: 'accepted' },
            { ...base, state: 'running', progress: { files: 1, bytes: 5, totalFiles: 2, totalBytes: 10 } },
            { ...base, state: 'done', result: { snapshot: 'ab'.repeat(32), files: 2, bytes: 10, verified: 2, failed: [] } },
          ];
      void (async () => {
        for (const s of steps) await publishEvent(f, o.site, 'status', s);
      })();
    });
  });
  afterAll(async () => {
    await f?.dispose();
  });

  it('logs in from the environment, lists sites and restores until verified', async () => {
    const login = await medvault(['login', '--url', f.app.url, '--user', 'tess', '--json'], { ...env, MEDVAULT_PASSWORD: PASSWORD, MEDVAULT_TOTP: totpCode(secret, f.now.value) });
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);
    expect(lastJson(login.stdout)).toMatchObject({ user: 'tess', role: 'technician' });
    expect(statSync(env.MEDVAULT_SESSION!).mode & 0o777).toBe(0o600);

    const sites = await medvault(['sites', '--json'], env);
    expect(lastJson(sites.stdout).sites[0]).toMatchObject({ site: SITE });

    const ok = await medvault(['restore', '--site', SITE, '--path', 'patients/42', '--target', '/srv/restore', '--json', '--timeout', '30'], env);
    expect(ok.code).toBe(0);
    expect(lastJson(ok.stdout)).toMatchObject({ state: 'done', exit: 0, result: { verified: 2 } });

    const refused = await medvault(['restore', '--site', SITE, '--path', '', '--target', '/etc/x', '--timeout', '30'], env);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('target outside restore_roots');

    // an order not waited for is followed afterwards by its id (there was no command for it)
    const sent = await medvault(['restore', '--site', SITE, '--path', 'patients/42', '--target', '/srv/restore', '--no-wait', '--json'], env);
    const id = lastJson(sent.stdout).id as string;
    expect(lastJson(sent.stdout).message).toBe(`order ${id} sent (not waiting; follow it with medvault order ${id})`);
    const followed = await medvault(['order', id, '--timeout', '30'], env);
    expect([followed.code, followed.stdout.trim().split('\n').at(-1)]).toEqual([0, `order ${id} done: 2 files, 10 B restored and verified from snapshot abababababab`]);
  });

  it("escapes control characters in what an agent reports (failed paths, a refusal's reason)", async () => {
    const login = await medvault(['login', '--url', f.app.url, '--user', 'tess', '--json'], { ...env, MEDVAULT_PASSWORD: PASSWORD, MEDVAULT_TOTP: totpCode(secret, f.now.value + 30_000) });
    expect(login.code, login.stderr).toBe(0);
    const failed = await medvault(['restore', '--site', SITE, '--path', '', '--target', '/srv/forged', '--timeout', '30'], env);
    expect(failed.code).toBe(6);
    const refused = await medvault(['restore', '--site', SITE, '--path', '', '--target', '/srv/forged-refusal', '--timeout', '30'], env);
    expect(refused.code).toBe(3);
    for (const r of [failed, refused]) {
      expect(r.stdout + r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      expect((r.stdout + r.stderr).split('\n').filter((l) => l.startsWith('order ') && l.includes('done'))).toEqual([]);
    }
    expect(failed.stderr).toContain('a\\norder o1 done: all files verified, \\e]0;pwned\\x07x');
    expect(refused.stderr).toContain('no\\e[2Ja\\norder o1 done');
    const json = await medvault(['restore', '--site', SITE, '--path', '', '--target', '/srv/forged', '--timeout', '30', '--json'], env);
    expect(lastJson(json.stdout).result.failed).toEqual([FORGED, TITLE]); // --json: as reported, JSON-escaped
  });

  it('exits 2 with a JSON error when not logged in', async () => {
    const r = await medvault(['sites', '--json'], { MEDVAULT_SESSION: join(tmpdir(), 'mv-no-such-session.json') });
    expect(r.code).toBe(2);
    expect(lastJson(r.stdout)).toMatchObject({ error: { message: expect.stringContaining('not logged in') } });
  });
});

/**
 * Legal holds from the technician's CLI (`medvault hold add|list|remove`) against a real controller
 * and nats-server: by snapshot prefix, held twice refused, unknown snapshot named, a reason needed,
 * lifted (kept on record with --all); and `medvault-controller offsite prune` refusing an unknown
 * site with exit 2.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, sha256Hex, subjects } from '@medvault/protocol';
import { totpCode } from '../auth/totp.js';
import { PASSWORD, REPO, SITE, startFixture, waitFor, type Fixture } from '../fixture.test-support.js';

const cli = (file: string) => fileURLToPath(new URL(file, import.meta.url));
function exec(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cli(file), ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const lastJson = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!);

let f: Fixture;
let env: Record<string, string>;
const snap = sha256Hex(Buffer.from('snapshot 1'));

beforeAll(async () => {
  f = await startFixture({ ingest: false });
  f.now.value = Date.now();
  const { totpSecret } = await f.app.users.add('tess', 'technician', PASSWORD, f.now.value);
  await f.nats.bus.publish(subjects.event(SITE, 'needs'), encode({ type: 'mv.snapshot-needs.v1', site: SITE, repo: REPO, snapshot: snap, time: 1, store: 'records', tags: [], part: 0, parts: 1, objects: [{ kind: 'snapshot', hash: snap }] }));
  await waitFor(() => f.app.retention.needs(SITE, REPO, snap), 10_000, 'needs list');
  env = { MEDVAULT_SESSION: join(mkdtempSync(join(tmpdir(), 'mv-holds-')), 'session.json') };
  const login = await exec('../cli/medvault.ts', ['login', '--url', f.app.url, '--user', 'tess', '--json'], { ...env, MEDVAULT_PASSWORD: PASSWORD, MEDVAULT_TOTP: totpCode(totpSecret, Date.now()) });
  expect(login.code, login.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await f?.dispose();
});

describe('medvault hold', () => {
  it('adds by prefix, refuses twice, names an unknown snapshot, needs a reason, lists, lifts', async () => {
    const add = await exec('../cli/medvault.ts', ['--json', 'hold', 'add', SITE, snap.slice(0, 10), '--reason', 'case 2025-17'], env);
    expect(add.code, add.stderr).toBe(0);
    expect(lastJson(add.stdout)).toMatchObject({ site: SITE, snapshot: snap, active: true, by: 'tess', reason: 'case 2025-17' });
    const twice = await exec('../cli/medvault.ts', ['hold', 'add', SITE, snap, '--reason', 'again'], env);
    expect([twice.code, twice.stderr]).toEqual([1, `medvault: snapshot ${snap} of site ${SITE} is on legal hold already\n`]);
    const unknown = await exec('../cli/medvault.ts', ['hold', 'add', SITE, 'deadbeefdead', '--reason', 'case 9'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`site ${SITE} has reported no snapshot deadbeefdead`);
    expect((await exec('../cli/medvault.ts', ['hold', 'add', SITE, snap], env)).stderr).toContain("required option '--reason <text>'");
    const list = await exec('../cli/medvault.ts', ['hold', 'list', SITE], env);
    expect(list.stdout).toMatch(new RegExp(`^${SITE}\\t${snap}\\theld since .* by tess: case 2025-17\\n$`));
    expect((await exec('../cli/medvault.ts', ['--json', 'hold', 'remove', SITE, snap, '--reason', 'case closed'], env)).code).toBe(0);
    expect(lastJson((await exec('../cli/medvault.ts', ['--json', 'hold', 'list'], env)).stdout).holds).toEqual([]);
    const all = lastJson((await exec('../cli/medvault.ts', ['--json', 'hold', 'list', SITE, '--all'], env)).stdout).holds;
    expect(all).toEqual([expect.objectContaining({ active: false, removed: expect.objectContaining({ by: 'tess', reason: 'case closed' }) })]);
  }, 120_000);

  it('medvault-controller offsite prune --site names a site it knows nothing of, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-prune-cli-'));
    writeFileSync(join(dir, 'controller.toml'), `state_dir = ${JSON.stringify(dir)}\n[nats]\nservers = ["${f.server.url}"]\n`);
    const r = await exec('../main.ts', ['--config', join(dir, 'controller.toml'), 'offsite', 'prune', '--site', 'clinic-zz', '--dry-run']);
    expect([r.code, r.stderr]).toEqual([2, 'medvault-controller: --site clinic-zz: this controller holds no off-site copy or needs list of that site\n']);
  }, 60_000);
});

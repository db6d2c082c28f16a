import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { httpAlive } from './systemd.js';

const dir = mkdtempSync(join(tmpdir(), 'mv-ctl-systemd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('controller watchdog probe', () => {
  it('passes only on 200 from its own API, also over HTTPS from the private CA', async () => {
    let status = 200;
    const handler = (_req: unknown, res: { statusCode: number; end(): void }) => {
      res.statusCode = status;
      res.end();
    };
    const plain = createServer(handler).listen(0, '127.0.0.1');
    await new Promise((r) => plain.once('listening', r));
    const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    expect(await httpAlive(url)).toBe(true);
    status = 503;
    expect(await httpAlive(url)).toBe(false);
    plain.close();
    expect(await httpAlive(url)).toBe(false);

    execFileSync('bash', [fileURLToPath(new URL('../../deploy/make-ca.sh', import.meta.url)), join(dir, 'tls'), 'localhost', '127.0.0.1'], { stdio: 'pipe' });
    status = 200;
    const tls = createHttpsServer({ cert: readFileSync(join(dir, 'tls', 'server.pem')), key: readFileSync(join(dir, 'tls', 'server.key')) }, handler).listen(0, '127.0.0.1');
    await new Promise((r) => tls.once('listening', r));
    expect(await httpAlive(`https://127.0.0.1:${(tls.address() as AddressInfo).port}`)).toBe(true);
    tls.close();
  });
});

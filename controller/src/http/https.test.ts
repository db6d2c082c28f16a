import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { silentLog } from '../log.js';
import { buildApi } from './server.js';

describe('HTTPS', () => {
  it('serves the API over TLS with a certificate from the private CA (deploy/make-ca.sh)', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mv-https-')), 'tls');
    execFileSync('bash', [fileURLToPath(new URL('../../../deploy/make-ca.sh', import.meta.url)), dir, 'localhost', '127.0.0.1'], { stdio: 'pipe' });
    const api = buildApi({
      auth: {} as never, fleet: {} as never, index: {} as never, book: {} as never, issuer: {} as never, clock: () => 1, log: silentLog(),
      tls: { cert: readFileSync(join(dir, 'server.pem'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8') },
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    const port = (api.server.address() as { port: number }).port;
    try {
      const body = await new Promise<string>((resolve, reject) => {
        get({ host: '127.0.0.1', port, path: '/api/v1/health', ca: readFileSync(join(dir, 'ca.pem')) }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      expect(JSON.parse(body)).toMatchObject({ status: 'ok' });
      // Without the pinned CA the certificate is not trusted.
      await expect(new Promise((resolve, reject) => get({ host: '127.0.0.1', port, path: '/api/v1/health' }, resolve).on('error', reject))).rejects.toThrow(/certificate|self.signed|unable/i);
    } finally {
      await api.close();
    }
  });
});

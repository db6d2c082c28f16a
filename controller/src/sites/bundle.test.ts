/**
 * The enrolment bundle's install steps put site.nk where the agent's systemd unit loads it from
 * (LoadCredential=), and its agent.toml names it the way the unit hands it over.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeBundle } from './bundle.js';

describe('enrolment bundle', () => {
  it("installs site.nk where the agent's unit loads it, and agent.toml names it as that credential", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-bundle-'));
    writeFileSync(join(dir, 'ca.pem'), 'CA\n');
    writeBundle(join(dir, 'b'), { site: 'clinic-a', seed: 'SUAX', controllerPublicKey: 'k', natsServers: ['tls://nats:4222'], caFile: join(dir, 'ca.pem') });
    const unit = readFileSync(new URL('../../../systemd/medvault-agent.service', import.meta.url), 'utf8');
    const readme = readFileSync(join(dir, 'b', 'README.txt'), 'utf8');
    const toml = readFileSync(join(dir, 'b', 'agent.toml'), 'utf8');
    for (const name of ['site.nk', 'local.key']) {
      const source = new RegExp(`^LoadCredential=${name.replace('.', '\\.')}:(\\S+)$`, 'm').exec(unit)?.[1];
      expect(source, name).toBe(`/etc/medvault/credentials/${name}`);
      expect(toml).toMatch(new RegExp(`_file = "credential:${name.replace('.', '\\.')}"`));
    }
    expect(readme).toContain('install -m 600 site.nk /etc/medvault/credentials/site.nk');
  });
});

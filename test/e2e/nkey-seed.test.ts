/**
 * A NATS credential file that is not an nkey seed, given to the real programs (TLS nats-server,
 * controller and agent of a secure fleet): `medvault-agent run` with a garbage or missing
 * [nats] nkey_file, and `medvault-controller serve` with a garbage controller seed, each stop at
 * once with a non-zero exit and MV_ERR_KEY_INVALID naming the file and what is wrong with it —
 * not "cannot connect to NATS …: invalid encoded key".
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fleet } from '../support/fleet.js';
import { BIN, run } from '../support/procs.js';
import { useFleet } from '../support/use-fleet.js';

describe('an nkey seed file that is not one', () => {
  let fleet: Fleet;
  const ws = useFleet('nkey', async (ws, start) => {
    mkdirSync(join(ws, 'records'), { recursive: true });
    writeFileSync(join(ws, 'records', 'a.txt'), 'a record\n');
    fleet = await start({ site: 'clinic-nkey', store: join(ws, 'records') });
  }, 300_000);

  /** A copy of `config` beside it whose nkey_file is `seedFile`; its path. */
  const withSeed = (config: string, seedFile: string, name: string) => {
    const text = readFileSync(config, 'utf8').replace(/^nkey_file = .*$/m, `nkey_file = ${JSON.stringify(seedFile)}`);
    expect(text).toContain(seedFile);
    const copy = join(config, '..', name);
    writeFileSync(copy, text);
    return copy;
  };

  it('medvault-agent run: exit 1, the file named and what is wrong with it', async () => {
    const cases: [string, string | undefined, string][] = [
      ['garbage.nk', 'this is not a seed\n', 'not a NATS nkey seed: it holds more than one line or word; an nkey seed is one line'],
      ['truncated.nk', 'SUAGARBAGE\n', 'not a NATS nkey seed: it has 10 characters; an nkey seed has 58, starting SU'],
      ['missing.nk', undefined, 'cannot read the NATS nkey seed: no such file'],
    ];
    for (const [name, content, what] of cases) {
      const seedFile = join(ws, 'appliance', name);
      if (content !== undefined) writeFileSync(seedFile, content, { mode: 0o600 });
      const config = withSeed(fleet.config, seedFile, `agent-${name}.toml`);
      const r = await run(BIN.agent, ['--config', config, 'run'], { timeoutMs: 60_000 });
      expect(r.code, `${r.stdout}${r.stderr}`).toBe(1);
      expect(r.stderr.trim()).toBe(`medvault-agent: ${seedFile}: ${what}; the site's nkey seed is site.nk from its enrolment bundle (medvault-controller site add), mode 0600`);
      const json = await run(BIN.agent, ['--config', config, 'run', '--json'], { timeoutMs: 60_000 });
      expect(json.code).toBe(1);
      expect(json.json).toMatchObject({ ok: false, code: 'MV_ERR_KEY_INVALID' });
      expect(json.json.message).toContain(seedFile);
    }
  }, 300_000);

  it('medvault-controller serve: exit 3 (key invalid), the file named and what is wrong with it', async () => {
    const seedFile = join(ws, 'controller', 'garbage.nk');
    writeFileSync(seedFile, `U${'A'.repeat(55)}\n`, { mode: 0o600 }); // a public key where the seed belongs
    const config = withSeed(join(ws, 'controller.toml'), seedFile, 'controller-garbage.toml');
    const r = await run(BIN.controller, ['serve', '--config', config, '--port', '0'], { timeoutMs: 60_000 });
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(3);
    expect(r.stderr.trim()).toBe(`medvault-controller: ${seedFile}: not a NATS nkey seed: it holds a user public key (U…), not a seed (SU…); the controller's nkey seed is made by medvault-controller init (<state_dir>/controller.nk, mode 0600)`);
  }, 120_000);
});

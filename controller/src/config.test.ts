import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mv-ctl-config-'));
  const file = (text: string) => {
    const p = join(dir, `c${Math.random()}.toml`);
    writeFileSync(p, text);
    return p;
  };

  it('reads a file, resolves relative paths and lets flags override', () => {
    const c = loadConfig({ config: file('state_dir = "state"\n[nats]\nservers = ["nats://n1:4222"]\n[http]\nport = 9000\n'), port: 0 });
    expect(c.state_dir).toBe(join(dir, 'state'));
    expect(c.nats.servers).toEqual(['nats://n1:4222']);
    expect(c.http).toEqual({ host: '127.0.0.1', port: 0 });
    expect(c.sessions.idle_timeout_s).toBe(900);
  });

  it('runs from flags alone', () => {
    expect(loadConfig({ stateDir: '/tmp/x', nats: 'nats://a:1,nats://b:2' }).nats.servers).toEqual(['nats://a:1', 'nats://b:2']);
  });

  it('names the file, the line and the key of a mistake', () => {
    expect(() => loadConfig({ config: file('state_dir = "/s"\n[http]\nport = "x"\n') })).toThrow(/\.toml:3: http\.port: expected a TCP port \(0-65535\), got "x"$/);
    expect(() => loadConfig({ config: file('state_dir = "/s"\nbogus = 1\n') })).toThrow(/\.toml:2: bogus: unknown key \(expected one of: state_dir, nats, /);
    expect(() => loadConfig({ config: join(dir, 'missing.toml') })).toThrow(/missing.toml does not exist$/);
  });
});

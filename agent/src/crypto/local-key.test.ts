import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLocalKey, readLocalKey } from './local-key.js';

describe('local key file', () => {
  it('missing (a command before init) is refused with what to run', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mv-key-')), 'local.key');
    await expect(readLocalKey(file)).rejects.toThrow(`${file}: there is no local key: run medvault-agent init first`);
  });
  it('is created 0600 and refused when others may read it, with the fix in the message', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mv-key-')), 'local.key');
    const key = await createLocalKey(file);
    expect(await readLocalKey(file)).toEqual(key);
    chmodSync(file, 0o644);
    await expect(readLocalKey(file)).rejects.toThrow(`mode 0644); run chmod 600 ${file}`);
    writeFileSync(file, 'short', { mode: 0o600 });
    chmodSync(file, 0o600);
    await expect(readLocalKey(file)).rejects.toThrow(/exactly 32 bytes, found 5/);
  });
});

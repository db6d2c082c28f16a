import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readStdin } from './prompt.js';

describe('readStdin', () => {
  it('reads one line without its newline', async () => {
    expect(await readStdin(Readable.from([Buffer.from('Secret-pass-123\n')]))).toBe('Secret-pass-123');
    expect(await readStdin(Readable.from([Buffer.from('no newline')]))).toBe('no newline');
  });

  it('refuses two lines (the answers to "Password:" and "Repeat password:") instead of a password with a line break in it', async () => {
    await expect(readStdin(Readable.from([Buffer.from('Secret-pass-123\nSecret-pass-123\n')]))).rejects.toMatchObject({ code: 'MV_ERR_CONFIG_INVALID', message: 'stdin holds 2 lines: give the password once, as one line' });
  });
});

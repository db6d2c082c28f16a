import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStatus, statusFile, writeStatus, type AgentStatus } from './status.js';

const status: AgentStatus = {
  pid: 4242, site: 'clinic-a', updatedAt: 1_700_000_000_000, startedAt: 1_699_999_000_000,
  stores: [{ name: 'records', type: 'files', continuous: false, rpoS: 900 }],
  disks: [{ path: '/mnt/disk1', ok: true, repo: 'ab'.repeat(16) }],
  queued: [], alerts: [], backlog: { objects: 3, bytes: 1024 },
};

describe('readStatus', () => {
  it('reads what writeStatus wrote, and undefined when the daemon never wrote one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-status-'));
    expect(readStatus(dir)).toBeUndefined();
    writeStatus(dir, status);
    expect(readStatus(dir)).toEqual(status);
  });

  // written without fsync: after a power cut the file may be empty or torn
  it.each([
    ['empty', '', /: empty \(torn/],
    ['torn', JSON.stringify(status).slice(0, 60), /: not JSON: /],
    ['null', 'null', /: not an agent status/],
    ['an array', '[]', /: not an agent status/],
    ['another shape', '{"site":"clinic-a","pid":"x","stores":5}', /: not an agent status/],
  ])('names the file when it is %s (MV_ERR_MESSAGE_INVALID, not "never ran")', (_what, text, why) => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-status-'));
    writeFileSync(statusFile(dir), text);
    expect(() => readStatus(dir)).toThrow(expect.objectContaining({ code: 'MV_ERR_MESSAGE_INVALID', message: expect.stringContaining(statusFile(dir)) }));
    expect(() => readStatus(dir)).toThrow(why);
  });
});

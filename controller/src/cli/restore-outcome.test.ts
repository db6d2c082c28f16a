import { describe, expect, it } from 'vitest';
import { progressBar, restoreOutcome } from './restore-outcome.js';

const base = { id: 'o1', final: true };
describe('restoreOutcome', () => {
  it('succeeds only when done and every file verified', () => {
    expect(restoreOutcome({ ...base, state: 'done', result: { snapshot: 'a'.repeat(64), files: 2, bytes: 3, verified: 2, failed: [] } }, false).exit).toBe(0);
    expect(restoreOutcome({ ...base, state: 'done', result: { snapshot: 'a'.repeat(64), files: 2, bytes: 3, verified: 1, failed: ['x'] } }, false).exit).toBe(6);
    expect(restoreOutcome({ ...base, state: 'done' }, false).exit).toBe(6);
  });

  it('says which copy was used, in readable bytes', () => {
    const r = restoreOutcome({ ...base, state: 'done', result: { snapshot: 'a'.repeat(64), files: 2, bytes: 3 * 1024 * 1024 + 300_000, verified: 2, failed: [], source: 'offsite' } }, false);
    expect(r).toEqual({ exit: 0, message: 'order o1 done: 2 files, 3.3 MiB restored and verified from snapshot aaaaaaaaaaaa (off-site copy)' });
    // one file is one file, in the outcome and in the bar
    expect(restoreOutcome({ ...base, state: 'done', result: { snapshot: 'a'.repeat(64), files: 1, bytes: 1, verified: 1, failed: [] } }, false).message).toBe('order o1 done: 1 file, 1 B restored and verified from snapshot aaaaaaaaaaaa');
    expect(restoreOutcome({ ...base, state: 'done', result: { snapshot: 'a'.repeat(64), files: 1, bytes: 1, verified: 0, failed: ['x'] } }, false).message).toBe('order o1: 0/1 file verified, 1 failed (x)');
    expect(progressBar({ id: 'o', final: false, state: 'running', progress: { files: 0, bytes: 0, totalFiles: 1, totalBytes: 1 } }, 10)).toBe('[----------] 0% running 0/1 file');
  });

  it('a rejected or expired request never ran: exit 7 with who and why, not "done"', () => {
    expect(restoreOutcome({ ...base, state: 'rejected', reason: { code: 'MV_ERR_AUTH_FORBIDDEN', message: 'rejected by tom: wrong folder' } }, false))
      .toEqual({ exit: 7, message: 'order o1 rejected by tom: wrong folder (not run)' });
    expect(restoreOutcome({ ...base, state: 'expired', reason: { code: 'MV_ERR_ORDER_EXPIRED', message: 'nobody approved it in time' } }, false).exit).toBe(7);
  });

  it("carries the agent's reason for a refusal or failure", () => {
    const r = restoreOutcome({ ...base, state: 'refused', reason: { code: 'MV_ERR_ORDER_TARGET', message: 'outside restore roots' } }, false);
    expect(r).toEqual({ exit: 3, message: expect.stringContaining('outside restore roots') });
    expect(restoreOutcome({ ...base, state: 'failed' }, false).exit).toBe(4);
    expect(restoreOutcome({ id: 'o1', final: false, state: 'running' }, true).exit).toBe(5);
    // --no-wait under four-eyes: not sent yet
    expect(restoreOutcome({ id: 'o1', final: false, state: 'awaiting-approval' }, false).message).toBe('order o1 awaits approval by a second technician (not waiting)');
  });

  it('draws a progress bar', () => {
    expect(progressBar({ id: 'o', final: false, state: 'running', progress: { files: 1, bytes: 50, totalFiles: 2, totalBytes: 100 } }, 10)).toBe('[#####-----] 50% running 1/2 files');
    // the bytes all written with 18 of 75 files to go is not 100%, nor is the last file before the order is done
    const running = (files: number) => ({ id: 'o', final: false, state: 'running' as const, progress: { files, bytes: 16_000_000, totalFiles: 75, totalBytes: 16_000_000 } });
    expect(progressBar(running(57), 10)).toBe('[#########-] 94% running 57/75 files');
    expect(progressBar(running(75), 10)).toBe('[##########] 99% running 75/75 files');
    expect(progressBar({ ...running(75), final: true, state: 'done' }, 10)).toBe('[##########] 100% done 75/75 files');
    // done with the last progress report older than the end: the result's count
    const result = { snapshot: 'a'.repeat(64), files: 143, bytes: 1, verified: 143, failed: [] };
    expect(progressBar({ ...running(1), progress: { files: 1, bytes: 1, totalFiles: 143, totalBytes: 1 }, final: true, state: 'done', result }, 10)).toBe('[##########] 100% done 143/143 files');
    // An accepted order waiting for the store's backup says so.
    const waiting = { code: 'MV_ERR_REPO_LOCKED', message: 'waiting for the backup of store records running now to finish' };
    expect(progressBar({ id: 'o', final: false, state: 'accepted', reason: waiting }, 10)).toBe(`[----------] 0% accepted: ${waiting.message}`);
  });
});

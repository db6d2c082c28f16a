import { describe, expect, it } from 'vitest';
import { interruptedMessage } from '../main.js';

// the built CLI's Ctrl-C tests (cli.test.ts) cover backup and restore end to end; restore-db needs
// a database server, so its line is checked here
describe('the line a command stopped by a signal prints', () => {
  it('says how to finish: run again, restore with --overwrite, or drop the database restore-db created', () => {
    expect(interruptedMessage('backup', 'SIGINT')).toBe('backup interrupted by SIGINT before it ended: nothing it left half-done is used; run it again to finish');
    expect(interruptedMessage('restore', 'SIGTERM')).toMatch(/^restore interrupted by SIGTERM before it ended: .*--overwrite/);
    expect(interruptedMessage('restore-db', 'SIGINT')).toMatch(/^restore-db interrupted by SIGINT before it ended: the database it created may hold part of the dump: drop it/);
  });
});

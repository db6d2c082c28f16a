/**
 * The fleet of an end-to-end test block: its workspace made, the fleet started before the block's
 * tests and stopped after them, the workspace removed (vitest hooks; kept apart from fleet.ts,
 * which the demo and the benchmarks import outside vitest).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Fleet, type FleetOptions } from './fleet.js';

/** Starts the block's fleet: Fleet.start in the workspace, with restore root `<ws>/restore`. */
export type StartFleet = (opts: Omit<FleetOptions, 'ws' | 'restoreRoots'>) => Promise<Fleet>;

/**
 * One fleet for the tests of the enclosing describe block (or file), in a fresh workspace
 * `<tmp>/mv-e2e-<name>-…`, made at once so the block can name paths in it; returns its path.
 * beforeAll runs `setUp(ws, start)` (within `timeoutMs`, else the configured hook timeout): it
 * writes the records and starts the fleet with `start`. afterAll stops the fleet `start` started,
 * even when `setUp` failed after starting it, and removes the workspace. Call it before the block's
 * own afterAll hooks: vitest runs those first (last registered, first run), so the block's
 * connections to the fleet close before it stops.
 */
export function useFleet(name: string, setUp: (ws: string, start: StartFleet) => Promise<void>, timeoutMs?: number): string {
  const ws = mkdtempSync(join(tmpdir(), `mv-e2e-${name}-`));
  let fleet: Fleet | undefined;
  beforeAll(() => setUp(ws, async (opts) => (fleet = await Fleet.start({ ...opts, ws, restoreRoots: [join(ws, 'restore')] }))), timeoutMs);
  afterAll(async () => {
    await fleet?.stop();
    rmSync(ws, { recursive: true, force: true });
  });
  return ws;
}

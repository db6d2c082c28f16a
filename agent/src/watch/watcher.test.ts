import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Coalescer } from './coalescer.js';
import { StoreWatcher, type WatchHealth } from './watcher.js';
import { withInotifyLimit } from './testing.js';

const until = async (what: string, f: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

function setup() {
  const root = join(mkdtempSync(join(tmpdir(), 'mv-watch-')), 'store');
  mkdirSync(root);
  let changes = 0;
  const health: WatchHealth[] = [];
  const w = new StoreWatcher({ root, onChange: () => changes++, onHealth: (h) => health.push(h), rootCheckMs: 100, rearmMs: 500 });
  return { root, w, health, changes: () => changes };
}

describe('StoreWatcher', () => {
  it('reports writes, editor-style atomic saves and deleted+recreated folders', async () => {
    const t = setup();
    await t.w.start();
    await until('watching', () => t.w.status.state === 'watching');
    writeFileSync(join(t.root, 'a.json'), '{}');
    await until('a change for a new file', () => t.changes() > 0);
    const n = t.changes();
    writeFileSync(join(t.root, '.a.json.swp'), '{"v":2}');
    renameSync(join(t.root, '.a.json.swp'), join(t.root, 'a.json'));
    await until('a change for an atomic save', () => t.changes() > n);
    mkdirSync(join(t.root, 'dicom'));
    rmSync(join(t.root, 'dicom'), { recursive: true });
    mkdirSync(join(t.root, 'dicom'));
    writeFileSync(join(t.root, 'dicom', 'x.dcm'), 'x');
    const m = t.changes();
    await until('a change inside a recreated folder', () => t.changes() > m);
    await t.w.close();
  });

  it('goes root-missing when the store folder vanishes, and back to watching with a rescan when it returns', async () => {
    const t = setup();
    await t.w.start();
    await until('watching', () => t.w.status.state === 'watching');
    rmSync(t.root, { recursive: true });
    await until('root-missing', () => t.w.status.state === 'root-missing');
    expect(t.w.status.reason).toMatch(/missing/);
    const n = t.changes();
    mkdirSync(t.root);
    await until('watching again', () => t.w.status.state === 'watching');
    expect(t.changes()).toBeGreaterThan(n);
    await t.w.close();
  });

  it.skipIf(process.getuid?.() !== 0)('degrades to scanning when the inotify watch limit is hit (ENOSPC)', async () => {
    const t = setup();
    for (let i = 0; i < 60; i++) mkdirSync(join(t.root, `d${i}`));
    await withInotifyLimit(8, async () => {
      await t.w.start();
      await until('scanning', () => t.w.status.state === 'scanning');
    });
    expect(t.w.status.reason).toMatch(/inotify watch limit/);
    expect(t.health.map((h) => h.state)).toContain('scanning');
    expect(t.changes()).toBeGreaterThan(0); // a rescan is requested at once
    // With the limit back, the watcher re-arms by itself.
    await until('watching again', () => t.w.status.state === 'watching', 10_000);
    await t.w.close();
  });
});

describe('Coalescer', () => {
  it('turns a burst into one run, and bounds the delay of a steady trickle', async () => {
    vi.useFakeTimers();
    try {
      let runs = 0;
      const c = new Coalescer(async () => void runs++, { quietMs: 1000, maxDelayMs: 3000, now: () => Date.now() });
      for (let i = 0; i < 50; i++) c.poke();
      await vi.advanceTimersByTimeAsync(1100);
      expect(runs).toBe(1);
      for (let i = 0; i < 10; i++) {
        c.poke();
        await vi.advanceTimersByTimeAsync(500);
      }
      expect(runs).toBeGreaterThanOrEqual(2); // fired by maxDelay despite never being quiet
      c.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('runs once more when events arrive during a run', async () => {
    let runs = 0;
    let release!: () => void;
    const c = new Coalescer(async () => {
      runs++;
      if (runs === 1) await new Promise<void>((r) => (release = r));
    }, { quietMs: 10, maxDelayMs: 50 });
    c.poke();
    await until('first run', () => runs === 1);
    c.poke();
    c.poke();
    release();
    await until('second run', () => runs === 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(runs).toBe(2);
    c.close();
  });
});

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validate } from '@medvault/protocol';
import { DiskProbe } from './disks.js';
import { mountOf } from '../platform/filesystems.js';
import { heartbeatStores } from './metrics.js';

describe('heartbeat disks and stores', () => {
  it('picks the longest mount point containing a path', () => {
    const fss = [{ mount: '/' }, { mount: '/mnt' }, { mount: '/mnt/backup1' }, { mount: '/mnt/backup10' }];
    expect(mountOf('/mnt/backup1/medvault', fss)?.mount).toBe('/mnt/backup1');
    expect(mountOf('/mnt/backup10', fss)?.mount).toBe('/mnt/backup10');
    expect(mountOf('/srv/x', fss)?.mount).toBe('/');
  });

  it('reports size and free bytes of a real disk and a valid heartbeat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-disks-'));
    const [d] = await new DiskProbe(Date.now).report([{ path: dir, ok: true }]);
    expect(d!.sizeBytes).toBeGreaterThan(0);
    expect(d!.freeBytes).toBeGreaterThan(0);
    expect(['passed', 'failed', 'unknown']).toContain(d!.smart);
    const stores = heartbeatStores(
      { pid: 1, site: 's', updatedAt: 1, startedAt: 1, queued: [], alerts: [], backlog: { objects: 0, bytes: 0 }, disks: [],
        stores: [{ name: 'records', type: 'files', continuous: true, rpoS: 60, lastFull: 10, lastSnapshot: { hash: 'a'.repeat(64), time: 20, job: 'continuous' }, lastJob: { job: 'continuous', result: 'ok', endedAt: 21 }, watcher: { state: 'watching', since: 5, events: 3 } }] },
      [{ store: 'records', job: 'continuous', time: 20 }, { store: 'records', job: 'full', time: 10 }],
    );
    expect(stores[0]).toMatchObject({ name: 'records', lastFullAt: 10, lastContinuousAt: 20, lastSnapshotAt: 20, watcher: { state: 'watching', since: 5 } });
    validate({ type: 'mv.heartbeat.v1', site: 's', sentAt: 1, agentVersion: '0', uptimeS: 0, repos: [], backlog: { objects: 0, bytes: 0 }, intervalS: 5, disks: [d], stores }, 'mv.heartbeat.v1');
  });
});

/**
 * Protocol-level simulated sites for the fleet bench and the dashboard tests: heartbeats (and
 * nothing else — no backups) as a real agent would send them, in a chosen condition.
 */
import { validate, type Heartbeat } from '@medvault/protocol';

export const simConditions = ['ok', 'failed-backup', 'disk-full', 'offsite-behind', 'rpo-exceeded'] as const;
export type SimCondition = (typeof simConditions)[number];

const H = 3600_000;

/** A valid mv.heartbeat.v1 for `site` in `condition` at `now`. */
export function simHeartbeat(site: string, condition: SimCondition, now: number, o: { intervalS?: number; uptimeS?: number; seed?: number } = {}): Heartbeat {
  const seed = o.seed ?? [...site].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7);
  const size = 2e12;
  const free = condition === 'disk-full' ? size * 0.04 : size * (0.3 + (seed % 50) / 100);
  return validate(
    {
      type: 'mv.heartbeat.v1', site, sentAt: now, agentVersion: '0.1.0', uptimeS: o.uptimeS ?? 86_400 + (seed % 1000), intervalS: o.intervalS ?? 10,
      repos: [{ id: (seed.toString(16).padStart(8, '0') + '0'.repeat(24)).slice(0, 32), path: '/mnt/backup1/medvault', snapshots: 100 + (seed % 400), lastSnapshotAt: now - 30_000 }],
      backlog: condition === 'offsite-behind' ? { objects: 420, bytes: 3.1e9, oldestAt: now - 3 * H } : { objects: 0, bytes: 0 },
      disks: [{ path: '/mnt/backup1/medvault', ok: true, mount: '/mnt/backup1', sizeBytes: size, freeBytes: Math.round(free), smart: 'passed' }],
      stores: [
        {
          name: 'records', kind: 'files', continuous: true, rpoS: 60, lastFullAt: now - 2 * 24 * H - (seed % 7) * H, lastIncrementalAt: now - 5 * H - (seed % 5) * H,
          lastContinuousAt: now - 30_000, lastSnapshotAt: now - 30_000,
          lastJob: condition === 'failed-backup'
            ? { job: 'incremental', result: 'failed', endedAt: now - 60_000, error: 'MV_ERR_STORAGE_FAILED: /mnt/backup1: no space left on device' }
            : { job: 'continuous', result: 'ok', endedAt: now - 30_000 },
          watcher: { state: 'watching', since: now - 86_400_000 },
          ...(condition === 'rpo-exceeded' ? { pendingSince: now - 5 * 60_000 } : {}),
        },
        { name: 'ehr', kind: 'postgres', continuous: false, rpoS: 86_400, lastFullAt: now - 3 * 24 * H, lastIncrementalAt: now - 4 * H, lastSnapshotAt: now - 4 * H, lastJob: { job: 'incremental', result: 'ok', endedAt: now - 4 * H } },
      ],
    },
    'mv.heartbeat.v1',
  );
}

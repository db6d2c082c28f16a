import { describe, expect, it } from 'vitest';
import { startAgentMetrics } from './metrics.js';
import type { AgentStatus } from './status.js';

describe('agent /metrics', () => {
  it('serves the status as Prometheus text on loopback', async () => {
    const status: AgentStatus = {
      pid: 1, site: 'clinic-a', updatedAt: 1, startedAt: 1, queued: [], backlog: { objects: 7, bytes: 4096 },
      alerts: [{ key: 'watcher:records', code: 'MV_ALERT_WATCHER_DEGRADED', severity: 'warning', message: 'scanning' }],
      disks: [{ path: '/mnt/b1', ok: true }, { path: '/mnt/b2', ok: false, error: 'EIO' }],
      stores: [{ name: 'records', type: 'files', continuous: true, rpoS: 60, watcher: { state: 'scanning', since: 1, events: 0 }, lastSnapshot: { hash: 'a'.repeat(64), time: 5000, job: 'continuous' }, lastJob: { job: 'continuous', result: 'failed', endedAt: 6000 } }],
    };
    const m = await startAgentMetrics(0, () => status);
    try {
      const text = await (await fetch(`http://127.0.0.1:${m.port}/metrics`)).text();
      for (const line of ['medvault_agent_backlog_objects 7', 'medvault_agent_backlog_bytes 4096', 'medvault_agent_store_last_snapshot_seconds{store="records"} 5', 'medvault_agent_store_last_job_ok{store="records"} 0', 'medvault_agent_store_watching{store="records"} 0', 'medvault_agent_disk_ok{path="/mnt/b2"} 0', 'medvault_agent_alerts_open{severity="warning"} 1']) {
        expect(text).toContain(line);
      }
      expect((await fetch(`http://127.0.0.1:${m.port}/other`)).status).toBe(404);
    } finally {
      await m.close();
    }
  });
});

/** What the API shows of a site: its last heartbeat, what is off site and its latest snapshot. */
import type { FleetRegistry } from '../fleet/registry.js';
import type { OffsiteIndex } from '../ingest/offsite-index.js';

export function siteSummary(site: string, fleet: FleetRegistry, index: OffsiteIndex) {
  const s = fleet.site(site);
  const hb = s?.heartbeat;
  const snaps = fleet.snapshots(site);
  return {
    site,
    lastSeenAt: s?.lastEventAt,
    lastHeartbeatAt: hb?.sentAt,
    agentVersion: hb?.agentVersion,
    backlog: hb?.backlog,
    repos: hb?.repos.length ?? 0,
    snapshots: snaps.length,
    latestSnapshot: snaps[0] ? { id: snaps[0].id, store: snaps[0].store, time: snaps[0].time, job: snaps[0].job } : undefined,
    offsite: index.totals(site),
  };
}

export function siteDetail(site: string, fleet: FleetRegistry, index: OffsiteIndex) {
  const s = fleet.site(site);
  return { ...siteSummary(site, fleet, index), firstSeenAt: s?.firstSeenAt, heartbeat: s?.heartbeat, uptimeS: s?.heartbeat?.uptimeS, repoList: s?.heartbeat?.repos ?? [] };
}

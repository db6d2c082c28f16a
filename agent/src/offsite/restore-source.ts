/**
 * Where a restore reads from (mv.restore-order.v1 `source`, `restore --from`): the local disk,
 * the off-site copy, or 'auto': the local disk when its repository opens, has the snapshot and
 * every pack and index the snapshot needs is there with its indexed size; otherwise off site.
 * The outcome says which source was used, and why auto left the local disk.
 */
import { MedvaultError, codes, type RestoreOrder } from '@medvault/protocol';
import { openLink, type Link } from '../replicate/link.js';
import type { AgentConfig } from '../config.js';
import { Repository, type Unlock } from '../repo/repository.js';
import { Restorer, type RestoreOptions, type RestoreResult } from '../restore/restorer.js';
import { OffsiteStore, listRepos } from './offsite-store.js';

export type RestoreSource = RestoreOrder['source'];

export interface SourceRepos {
  /** The local repository; throws when the disk or repository is not usable. */
  local(): Promise<Repository>;
  /** The off-site copy of the repository, opened; the caller closes it. */
  offsite(): Promise<Repository>;
}

export type SourcedResult = RestoreResult & { source: 'local' | 'offsite'; fallback?: string };

/** Opens the off-site copy of `repo` (or, when undefined, of the site's only repository there). */
export async function openOffsiteRepository(link: Pick<Link, 'read'>, site: string, repo: string | undefined, unlock: Unlock): Promise<Repository> {
  let id = repo;
  if (id === undefined) {
    const repos = await listRepos(link, site);
    if (repos.length !== 1) {
      throw new MedvaultError(repos.length === 0 ? codes.NOT_FOUND : codes.CONFLICT, `site ${site} has ${repos.length === 0 ? 'no repository' : `${repos.length} repositories (${repos.join(', ')})`} off site; name the repository`);
    }
    id = repos[0]!;
  }
  const store = new OffsiteStore(link, site, id);
  return Repository.open(store, unlock, { label: store.label });
}

/** Why the local repository cannot restore `snapshot` whole, or undefined when it can. */
async function localProblem(repo: Repository, snapshot: string, store: string | undefined): Promise<string | undefined> {
  try {
    await repo.syncCatalog();
    const s = await repo.resolveSnapshot(snapshot, store);
    const sizes = new Map<string, number>();
    for await (const e of repo.store.list('pack')) sizes.set(e.name, e.size);
    const indexes = new Set<string>();
    for await (const e of repo.store.list('index')) indexes.add(e.name);
    for (const o of await repo.snapshotObjects(s.hash)) {
      if (o.kind === 'index' && !indexes.has(o.hash)) return `index ${o.hash} is missing`;
      if (o.kind === 'pack') {
        const want = (await repo.catalog.pack(o.hash))?.size;
        if (!sizes.has(o.hash)) return `pack ${o.hash} is missing`;
        if (want !== undefined && sizes.get(o.hash) !== want) return `pack ${o.hash} has ${sizes.get(o.hash)} bytes, indexed ${want}`;
      }
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Restores from `source`; with 'auto' the local disk first (see above), else the off-site copy. */
export async function restoreFrom(source: RestoreSource, o: RestoreOptions, repos: SourceRepos, log?: (msg: string, fields: Record<string, unknown>) => void): Promise<SourcedResult> {
  let fallback: string | undefined;
  if (source !== 'offsite') {
    let local: Repository | undefined;
    try {
      local = await repos.local();
    } catch (err) {
      if (source === 'local') throw err;
      fallback = `local disk not usable: ${(err as Error).message}`;
    }
    if (local) {
      if (source === 'local') {
        await local.syncCatalog();
        return { ...(await new Restorer(local).restore(o)), source: 'local' };
      }
      const problem = await localProblem(local, o.snapshot, o.store);
      if (problem === undefined) return { ...(await new Restorer(local).restore(o)), source: 'local' };
      fallback = `local copy incomplete: ${problem}`;
    }
    log?.('restoring from the off-site copy: the local disk cannot restore this snapshot', { snapshot: o.snapshot, reason: fallback });
  }
  const off = await repos.offsite();
  try {
    return { ...(await new Restorer(off).restore(o)), source: 'offsite', ...(fallback ? { fallback } : {}) };
  } finally {
    await off.close();
  }
}

/** A Link for one CLI command, with the site's identity from the agent configuration. */
export async function siteLink(cfg: Pick<AgentConfig, 'file' | 'site' | 'nats'>, command: string): Promise<Link> {
  if (!cfg.nats) throw new MedvaultError(codes.CONFIG_INVALID, `${cfg.file}: [nats] servers are needed to read the off-site copy`);
  return openLink({
    servers: cfg.nats.servers, name: `medvault-agent ${command} ${cfg.site}`, site: cfg.site, failFast: true,
    ...(cfg.nats.nkey_file ? { nkeySeedFile: cfg.nats.nkey_file } : {}),
    ...(cfg.nats.ca_file ? { caFile: cfg.nats.ca_file } : {}),
  });
}

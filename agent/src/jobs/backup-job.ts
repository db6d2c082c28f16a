/**
 * jobs/: one backup job of one record store to one repository, whatever the store's type — the
 * piece the CLI, the scheduler and continuous mode all call, so they record runs the same way.
 */
import type { StoreConfig } from '../config.js';
import { Archiver, type BackupResult } from '../backup/archiver.js';
import { StreamArchiver } from '../backup/stream-archiver.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot } from '../repo/snapshot-file.js';
import { dumpDatabase, dumpName, dumpSource } from '../sources/database.js';

/**
 * What a run over every disk counts as (the run book, the daemon's job history): 'full' when every
 * disk's snapshot is full (a run asked as incremental is full where the disk has no parent
 * snapshot of the store), otherwise the job asked for.
 */
export function ranAs(asked: Snapshot['job'], results: Pick<BackupResult, 'job'>[]): Snapshot['job'] {
  return results.length > 0 && results.every((r) => r.job === 'full') ? 'full' : asked;
}

export async function backupStoreTo(
  repo: Repository,
  store: StoreConfig,
  o: { job: Snapshot['job']; actor: Snapshot['actor']; tags?: string[]; onProgress?: (p: { files: number; bytes: number }) => void },
): Promise<BackupResult> {
  if (store.type === 'files') {
    return new Archiver(repo).backup({ store: store.name, source: store.path, job: o.job, actor: o.actor, ...(o.tags ? { tags: o.tags } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  }
  const dump = dumpDatabase(store);
  return new StreamArchiver(repo).backup({
    store: store.name, name: dumpName(store), source: dumpSource(store), stream: dump.stream, verify: dump.verify,
    job: o.job === 'continuous' ? 'incremental' : o.job, actor: o.actor, ...(o.tags ? { tags: o.tags } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
}

/**
 * Where a snapshot's copies are, from the receipt book: 'both' when every object it needs has a
 * receipt, 'local' when some have none, 'offsite' for a snapshot receipted but no longer on disk.
 */
import type { ObjectKind } from '@medvault/protocol';
import type { ReceiptBook } from './receipts.js';

export type Whereabouts = 'local' | 'offsite' | 'both';

export async function snapshotWhereabouts(
  repo: { id: string; snapshotObjects(hash: string): Promise<{ kind: ObjectKind; hash: string }[]> },
  book: Pick<ReceiptBook, 'covers'>,
  hash: string,
): Promise<Whereabouts> {
  return book.covers(repo.id, await repo.snapshotObjects(hash)) ? 'both' : 'local';
}

/** Snapshots of `repo` the controller holds but the disk does not. */
export function offsiteOnly(repoId: string, book: Pick<ReceiptBook, 'hashes'>, local: Iterable<string>): string[] {
  const here = new Set(local);
  return book.hashes(repoId, 'snapshot').filter((h) => !here.has(h));
}

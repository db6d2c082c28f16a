/**
 * Backs up one byte stream (a database dump) as a snapshot holding a single file, streamed straight
 * into the repository: chunked, deduplicated and sealed as it arrives, nothing staged on disk.
 * The snapshot is committed only after `verify()` accepts the finished stream; a failed or
 * truncated dump is never recorded as a backup (its chunks stay unreferenced until prune).
 */
import { hostname } from 'node:os';
import type { Repository } from '../repo/repository.js';
import { printable } from '@medvault/protocol';
import { encodeTree, nameBytes, type TreeNode } from '../repo/tree.js';
import type { Snapshot } from '../repo/snapshot-file.js';
import { Chunker } from './chunker.js';
import type { BackupResult } from './archiver.js';

export interface StreamBackupOptions {
  store: string;
  /** The file name inside the snapshot, e.g. `openemr.mysql.sql`. */
  name: string;
  /** What was dumped, for the snapshot's `source`, e.g. `mysql://127.0.0.1:3306/openemr`. */
  source: string;
  stream: AsyncIterable<Buffer>;
  job: Snapshot['job'];
  actor?: Snapshot['actor'];
  tags?: string[];
  /** Called once the stream has ended; throws (naming the problem) to abort the backup. */
  verify: () => Promise<void>;
  onProgress?: (p: { files: number; bytes: number }) => void;
}

export class StreamArchiver {
  constructor(private readonly repo: Repository) {}

  async backup(o: StreamBackupOptions): Promise<BackupResult> {
    const started = this.repo.now();
    const w = await this.repo.writer();
    try {
      const chunker = new Chunker(this.repo.keys.gear, this.repo.config.chunker);
      const content: string[] = [];
      let bytes = 0;
      let newBytes = 0;
      const save = async (c: Buffer) => {
        const n = c.length; // saveBlob consumes c
        const r = await w.saveBlob('data', c);
        if (r.added) newBytes += n;
        content.push(r.id);
      };
      for await (const buf of o.stream) {
        bytes += buf.length;
        for (const c of chunker.push(buf)) await save(c);
        o.onProgress?.({ files: 0, bytes });
      }
      for (const c of chunker.end()) await save(c);
      await o.verify();
      const ns = (BigInt(this.repo.now()) * 1_000_000n).toString();
      const node: TreeNode = {
        name: Buffer.from(o.name).toString('base64url'), display: printable(o.name), type: 'file', mode: 0o600,
        uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mtime: ns, ctime: ns, size: bytes, inode: '0', dev: '0', links: 1, content,
      };
      const tree = (await w.saveBlob('tree', encodeTree([node]))).id;
      const parent = (await this.repo.snapshots()).filter((s) => s.store === o.store).pop();
      const job = parent ? o.job : 'full'; // as the Archiver: a first dump has no parent to be incremental to
      const summary = { files: 1, dirs: 0, symlinks: 0, others: 0, bytes, newBytes, storedBytes: 0, reused: 0, changed: 0, errors: 0 };
      await w.flush();
      summary.storedBytes = w.written.filter((x) => x.kind === 'pack').reduce((n, x) => n + x.size, 0);
      const snapshot = await w.saveSnapshot({
        v: 1, time: this.repo.now(), store: o.store, job, tree, host: hostname(), source: o.source,
        ...(parent ? { parent: parent.hash } : {}), partial: false, summary, errors: [], tags: o.tags ?? [],
        actor: o.actor ?? { kind: 'agent', id: 'medvault-agent' },
      });
      o.onProgress?.({ files: 1, bytes });
      return { snapshot, job, repo: this.repo.id, partial: false, summary, errors: [], changed: [], written: [...w.written], durationMs: this.repo.now() - started };
    } finally {
      await w.release();
    }
  }
}

/** The bytes of file `name` at the top of a snapshot, authenticated chunk by chunk as they stream. */
export async function* snapshotFileStream(repo: Repository, snapshot: string, name: string): AsyncGenerator<Buffer> {
  const nodes = await repo.loadTree((await repo.loadSnapshot(snapshot)).tree);
  const node = nodes.find((n) => n.type === 'file' && nameBytes(n).equals(Buffer.from(name)));
  if (!node?.content) throw new Error(`snapshot ${snapshot.slice(0, 12)} holds no file ${name}`);
  for (const id of node.content) yield await repo.loadBlob(id, 'data');
}

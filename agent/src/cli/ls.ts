/** `medvault-agent ls <snapshot> [path]`: list what a snapshot holds, recursively below `path`. */
import type { Command } from 'commander';
import { MedvaultError, codes } from '@medvault/protocol';
import type { Repository } from '../repo/repository.js';
import { findByName, type TreeNode } from '../repo/tree.js';
import { withSnapshotRepo, type CliContext } from './context.js';

interface Entry {
  path: string;
  type: TreeNode['type'];
  mode: string;
  size: number;
  mtime: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('ls <snapshot> [path]')
    .description("list a snapshot's files ('latest' or a hash prefix)")
    .option('--store <name>', "with 'latest': the latest snapshot of this store")
    .action(async (ref: string, path: string | undefined, opts: { store?: string }) => {
      const entries = await withSnapshotRepo(ctx, ref, opts.store, async (repo, hash) => {
        const snap = await repo.loadSnapshot(hash);
        const out: Entry[] = [];
        let tree = snap.tree;
        const segs = (path ?? '').split('/').filter((s) => s !== '');
        for (const [i, seg] of segs.entries()) {
          const n = findByName(await repo.loadTree(tree), seg);
          if (!n) throw new MedvaultError(codes.NOT_FOUND, `snapshot ${hash.slice(0, 12)}: no path ${path}`);
          if (n.type !== 'dir') {
            out.push(entry(segs.join('/'), n));
            return { hash, out };
          }
          if (i === segs.length - 1) out.push(entry(segs.join('/'), n));
          tree = n.subtree!;
        }
        await walk(repo, tree, segs.join('/'), out);
        return { hash, out };
      });
      const lines = entries.out.map((e) => `${e.type.padEnd(8)} ${e.mode} ${String(e.size).padStart(12)}  ${e.mtime}  ${e.path}`);
      ctx.print(lines.join('\n'), { command: 'ls', snapshot: entries.hash, entries: entries.out });
    });
}

function entry(path: string, n: TreeNode): Entry {
  return { path, type: n.type, mode: n.mode.toString(8).padStart(4, '0'), size: n.size, mtime: new Date(Number(BigInt(n.mtime) / 1_000_000n)).toISOString() };
}

async function walk(repo: Repository, tree: string, prefix: string, out: Entry[]): Promise<void> {
  for (const n of await repo.loadTree(tree)) {
    const p = prefix ? `${prefix}/${n.display}` : n.display;
    out.push(entry(p, n));
    if (n.subtree) await walk(repo, n.subtree, p, out);
  }
}

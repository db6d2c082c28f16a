/**
 * guard/: ransomware detection. After each backup the new snapshot is compared with its parent:
 * a run in which an unusual share of files changes, is renamed to new extensions, turns
 * high-entropy (was low, now looks random) or disappears is suspect. `assess` is a pure function
 * of the counts; `compareSnapshots` gathers them by walking both trees and sampling the first
 * chunk of changed files (plaintext, decrypted from the repository, never read from the store
 * again).
 */
import type { Repository } from '../repo/repository.js';
import type { TreeNode } from '../repo/tree.js';

export interface ChangeStats {
  /** Regular files in the parent snapshot. */
  before: number;
  after: number;
  changed: number;
  added: number;
  deleted: number;
  /** Added files whose name is a deleted file's name plus a new extension, or the same stem with another extension. */
  renamed: number;
  /** Changed or renamed files sampled for entropy, and how many of those went from low to high entropy. */
  sampled: number;
  turnedRandom: number;
}

export interface Thresholds {
  /** Below this many files in the parent nothing is judged (too small to tell). */
  minFiles: number;
  changedShare: number;
  renamedShare: number;
  randomShare: number;
  deletedShare: number;
}

export const defaultThresholds: Thresholds = { minFiles: 20, changedShare: 0.5, renamedShare: 0.2, randomShare: 0.3, deletedShare: 0.5 };

export function assess(s: ChangeStats, t: Thresholds = defaultThresholds): { suspect: boolean; reasons: string[] } {
  if (s.before < t.minFiles) return { suspect: false, reasons: [] };
  const pct = (n: number) => `${Math.round((100 * n) / s.before)}%`;
  const reasons: string[] = [];
  if (s.changed / s.before >= t.changedShare) reasons.push(`${s.changed} of ${s.before} files (${pct(s.changed)}) changed in one run`);
  if (s.renamed / s.before >= t.renamedShare) reasons.push(`${s.renamed} files (${pct(s.renamed)}) were renamed to new extensions`);
  if (s.sampled > 0 && s.turnedRandom / s.sampled >= t.randomShare && s.turnedRandom >= 5) {
    reasons.push(`${s.turnedRandom} of ${s.sampled} sampled changed files turned high-entropy (encrypted-looking)`);
  }
  if (s.deleted / s.before >= t.deletedShare) reasons.push(`${s.deleted} of ${s.before} files (${pct(s.deleted)}) disappeared`);
  return { suspect: reasons.length > 0, reasons };
}

/** Shannon entropy in bits per byte (0 to 8). */
export function entropy(b: Uint8Array): number {
  if (b.length === 0) return 0;
  const counts = new Uint32Array(256);
  for (const x of b) counts[x]!++;
  let h = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / b.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const HIGH = 7.5;

async function files(repo: Repository, tree: string, prefix = '', out = new Map<string, TreeNode>()): Promise<Map<string, TreeNode>> {
  for (const n of await repo.loadTree(tree)) {
    const path = prefix ? `${prefix}/${n.name}` : n.name;
    if (n.type === 'dir' && n.subtree) await files(repo, n.subtree, path, out);
    else if (n.type === 'file') out.set(path, n);
  }
  return out;
}

const stem = (p: string) => {
  const name = Buffer.from(p.slice(p.lastIndexOf('/') + 1), 'base64url').toString('latin1');
  const dot = name.indexOf('.');
  return `${p.slice(0, p.lastIndexOf('/') + 1)}${dot > 0 ? name.slice(0, dot) : name}`;
};

/** Counts what changed from snapshot `parent` to `snapshot`, sampling up to `sample` files' first chunks. */
export async function compareSnapshots(repo: Repository, parent: string, snapshot: string, sample = 200): Promise<ChangeStats> {
  const [a, b] = await Promise.all([files(repo, (await repo.loadSnapshot(parent)).tree), files(repo, (await repo.loadSnapshot(snapshot)).tree)]);
  const same = (x: TreeNode, y: TreeNode) => x.size === y.size && (x.content ?? []).join() === (y.content ?? []).join();
  const pairs: [TreeNode, TreeNode][] = [];
  let changed = 0;
  let deleted = 0;
  const deletedByStem = new Map<string, TreeNode>();
  for (const [path, node] of a) {
    const now = b.get(path);
    if (!now) {
      deleted++;
      deletedByStem.set(stem(path), node);
    } else if (!same(node, now)) {
      changed++;
      pairs.push([node, now]);
    }
  }
  let added = 0;
  let renamed = 0;
  for (const [path, node] of b) {
    if (a.has(path)) continue;
    added++;
    const old = deletedByStem.get(stem(path));
    if (old) {
      renamed++;
      pairs.push([old, node]);
    }
  }
  let sampled = 0;
  let turnedRandom = 0;
  const step = Math.max(1, Math.floor(pairs.length / sample));
  for (let i = 0; i < pairs.length && sampled < sample; i += step) {
    const [was, is] = pairs[i]!;
    const first = async (n: TreeNode) => (n.content?.[0] ? (await repo.loadBlob(n.content[0], 'data')).subarray(0, 65536) : Buffer.alloc(0));
    const [x, y] = await Promise.all([first(was), first(is)]);
    if (x.length < 256 || y.length < 256) continue;
    sampled++;
    if (entropy(x) < HIGH && entropy(y) >= HIGH) turnedRandom++;
  }
  return { before: a.size, after: b.size, changed, added, deleted, renamed, sampled, turnedRandom };
}

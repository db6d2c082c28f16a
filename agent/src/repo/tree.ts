/**
 * Trees: one blob (type tree) per directory, JSON {v:1, nodes:[...]} sorted by raw name bytes, so
 * an unchanged folder encodes to the same bytes and costs nothing in the next snapshot. Names are
 * bytes (base64url) with a lossy display string (UTF-8, control characters escaped by printable());
 * times are nanosecond decimal strings.
 */
import { z } from 'zod';
import { MedvaultError, codes, HASH_RE, printable } from '@medvault/protocol';
import { parseJson } from './format.js';
import { optional, plainObject, str, uint } from './hand-check.js';

export const nodeTypes = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev'] as const;
export type NodeType = (typeof nodeTypes)[number];

const hex = z.string().regex(HASH_RE);
const ns = z.string().regex(/^\d{1,30}$/);
const b64 = z.string().regex(/^[A-Za-z0-9_-]*$/);
const int = z.number().int().nonnegative();

export const nodeSchema = z.strictObject({
  name: b64,
  display: z.string(),
  type: z.enum(nodeTypes),
  mode: int.max(0o7777),
  uid: int,
  gid: int,
  mtime: ns,
  ctime: ns,
  size: int,
  inode: ns,
  dev: ns,
  links: int,
  /** file: chunk ids in order. */
  content: z.array(hex).optional(),
  /** dir: tree blob id. */
  subtree: hex.optional(),
  /** symlink: target bytes, base64url; never followed. */
  target: b64.optional(),
  rdev: ns.optional(),
  /** Extended attributes (ACLs included, as system.posix_acl_*): [name, base64url value], in kernel order. */
  xattrs: z.array(z.tuple([z.string().min(1).max(255), b64])).max(1000).optional(),
});
export type TreeNode = z.infer<typeof nodeSchema>;

const treeSchema = z.strictObject({ v: z.literal(1), nodes: z.array(nodeSchema) });

export function nameBytes(n: TreeNode): Buffer {
  return Buffer.from(n.name, 'base64url');
}

/**
 * The entry of `nodes` that a path segment given as text names: the one whose name is the
 * segment's UTF-8 bytes; else, when the segment holds U+FFFD, the one whose name shows as the
 * segment (a name that is not UTF-8 is shown with `�`, and cannot be typed otherwise: node decodes
 * a command line's arguments as UTF-8). Undefined when none; MV_ERR_CONFLICT when several names
 * show the same (`caf\xe9` and `caf\xe8` both show as `caf�`).
 */
export function findByName(nodes: TreeNode[], segment: string): TreeNode | undefined {
  const want = Buffer.from(segment);
  const exact = nodes.find((n) => nameBytes(n).equals(want));
  if (exact || !segment.includes('\uFFFD')) return exact;
  const shown = nodes.filter((n) => nameBytes(n).toString('utf8') === segment);
  if (shown.length > 1) throw new MedvaultError(codes.CONFLICT, `${printable(segment)}: ${shown.length} names that are not UTF-8 show as this; restore their folder instead`);
  return shown[0];
}

/**
 * Why a raw name must not be created on restore, or undefined when it is safe: empty, '.', '..',
 * or containing '/' or NUL (absolute and nested names included).
 */
export function unsafeName(raw: Buffer): string | undefined {
  if (raw.length === 0) return 'empty name';
  if (raw.equals(Buffer.from('.')) || raw.equals(Buffer.from('..'))) return `name ${raw.toString()}`;
  if (raw.includes(0x2f)) return 'name contains /';
  if (raw.includes(0)) return 'name contains NUL';
  if (raw.length > 255) return 'name longer than 255 bytes';
  return undefined;
}

/**
 * A tree's bytes: its nodes sorted by raw name bytes. Each name is decoded once, not at every
 * comparison (the sort decoded two names per comparison: ~44,000 buffers for a folder of 2,000
 * files; a 1% incremental of the bench data set encodes ~165 changed folders and one of 2,000).
 */
export function encodeTree(nodes: TreeNode[]): Buffer {
  const keyed = nodes.map((n) => ({ n, raw: nameBytes(n) }));
  keyed.sort((a, b) => Buffer.compare(a.raw, b.raw));
  return Buffer.from(JSON.stringify({ v: 1, nodes: keyed.map((k) => k.n) }));
}

const B64_RE = /^[A-Za-z0-9_-]*$/;
const NS_RE = /^\d{1,30}$/;
const nodeKeys = new Set(Object.keys(nodeSchema.shape));

/**
 * Whether two nodes record the same thing: every field of nodeSchema equal (arrays element by
 * element). A folder whose nodes all equal its parent tree's nodes is that tree, so a backup reuses
 * its id. Field by field rather than a loop over the schema's keys: it runs for every entry of an
 * incremental, where the loop cost ~2 µs a node (~50 ms at 22,000 files); tree.test.ts checks that
 * a change in any schema field is seen.
 */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  return (
    a.name === b.name && a.display === b.display && a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid &&
    a.mtime === b.mtime && a.ctime === b.ctime && a.size === b.size && a.inode === b.inode && a.dev === b.dev && a.links === b.links &&
    a.subtree === b.subtree && a.target === b.target && a.rdev === b.rdev && sameList(a.content, b.content) && sameXattrs(a.xattrs, b.xattrs)
  );
}

function sameList(x: readonly string[] | undefined, y: readonly string[] | undefined): boolean {
  if (x === y) return true;
  if (x === undefined || y === undefined || x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function sameXattrs(x: TreeNode['xattrs'], y: TreeNode['xattrs']): boolean {
  if (x === y) return true;
  if (x === undefined || y === undefined || x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i]![0] !== y[i]![0] || x[i]![1] !== y[i]![1]) return false;
  return true;
}

const xattr = (x: unknown) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && x[0].length >= 1 && x[0].length <= 255 && str(x[1], B64_RE);

/**
 * The tree schema checked by hand: the same rules as nodeSchema, never looser (anything it does
 * not accept goes to zod, which decides and words the error), at a fraction of the cost: zod took
 * 2-4 us per node, more than JSON.parse, this ~0.5 us; an incremental backup reads every parent
 * folder (zod was ~300 ms of a 1% incremental's profile at 22,000 files).
 */
function plainTree(t: unknown): TreeNode[] | undefined {
  if (!plainObject(t)) return undefined;
  const o = t;
  for (const k in o) if (k !== 'v' && k !== 'nodes') return undefined;
  if (o.v !== 1 || !Array.isArray(o.nodes)) return undefined;
  for (const x of o.nodes as unknown[]) {
    if (!plainObject(x)) return undefined;
    for (const k in x) if (!nodeKeys.has(k)) return undefined;
    const ok =
      str(x.name, B64_RE) && typeof x.display === 'string' && nodeTypes.includes(x.type as NodeType) && uint(x.mode, 0o7777) && uint(x.uid) && uint(x.gid) &&
      str(x.mtime, NS_RE) && str(x.ctime, NS_RE) && uint(x.size) && str(x.inode, NS_RE) && str(x.dev, NS_RE) && uint(x.links) &&
      optional(x.content, (c) => Array.isArray(c) && c.every((h) => str(h, HASH_RE))) && optional(x.subtree, (h) => str(h, HASH_RE)) &&
      optional(x.target, (v) => str(v, B64_RE)) && optional(x.rdev, (v) => str(v, NS_RE)) &&
      optional(x.xattrs, (a) => Array.isArray(a) && a.length <= 1000 && a.every(xattr));
    if (!ok) return undefined;
  }
  return o.nodes as TreeNode[];
}

/**
 * Validates a tree's shape; names are checked by the caller (unsafeName) so one bad name is
 * reported, not fatal. Each display string comes back printable() (trees written before names were
 * escaped hold them raw), equal to what a backup computes for the same name now.
 */
export function decodeTree(b: Uint8Array, id: string): TreeNode[] {
  const what = `tree ${id}`;
  const json = parseJson(b, what);
  let nodes = plainTree(json);
  if (!nodes) {
    const r = treeSchema.safeParse(json);
    if (!r.success) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    nodes = r.data.nodes;
  }
  for (const n of nodes) {
    const shown = printable(n.display);
    if (shown !== n.display) n.display = shown;
    if (n.type === 'file' && !n.content) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: file ${n.display} has no content list`);
    if (n.type === 'dir' && !n.subtree) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: dir ${n.display} has no subtree`);
    if (n.type === 'symlink' && n.target === undefined) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: symlink ${n.display} has no target`);
  }
  return nodes;
}

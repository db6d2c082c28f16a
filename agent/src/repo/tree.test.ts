import { describe, expect, it } from 'vitest';
import { decodeTree, encodeTree, nodeSchema, sameNode, type TreeNode } from './tree.js';
import { z } from 'zod';

const h = (c: string) => c.repeat(64);
const file: TreeNode = { name: 'YS5qc29u', display: 'a.json', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1700000000123456789', ctime: '1700000000123456789', size: 12, inode: '42', dev: '2049', links: 1, content: [h('a'), h('b')], xattrs: [['user.x', 'dmFs']] };
const dir: TreeNode = { ...file, name: 'ZA', display: 'd', type: 'dir', mode: 0o755, size: 0, content: undefined, subtree: h('c') } as TreeNode;
delete (dir as Partial<TreeNode>).content;
const link: TreeNode = { ...dir, name: 'bA', display: 'l', type: 'symlink', target: 'Li4vYQ' } as TreeNode;
delete (link as Partial<TreeNode>).subtree;
const dev: TreeNode = { ...link, name: 'dg', display: 'v', type: 'chardev', rdev: '259' } as TreeNode;
delete (dev as Partial<TreeNode>).target;

const tree = (nodes: unknown[], extra: object = {}) => Buffer.from(JSON.stringify({ v: 1, nodes, ...extra }));
const strictTree = z.strictObject({ v: z.literal(1), nodes: z.array(nodeSchema) });

describe('decodeTree', () => {
  it('decodes what encodeTree wrote, equal to what the zod schema accepts', () => {
    const b = encodeTree([file, dir, link, dev]);
    expect(decodeTree(b, h('e'))).toEqual(strictTree.parse(JSON.parse(b.toString())).nodes);
  });

  // each breaks one rule of nodeSchema; the fast check must refuse all of them, as zod does
  const broken: [string, (n: Record<string, unknown>) => void][] = [
    ['unknown key', (n) => (n.extra = 1)],
    ['name not base64url', (n) => (n.name = 'a/b')],
    ['display not a string', (n) => (n.display = 5)],
    ['unknown type', (n) => (n.type = 'door')],
    ['mode too large', (n) => (n.mode = 0o10000)],
    ['negative uid', (n) => (n.uid = -1)],
    ['fractional gid', (n) => (n.gid = 1.5)],
    ['mtime not decimal', (n) => (n.mtime = '12a')],
    ['ctime a number', (n) => (n.ctime = 12)],
    ['size missing', (n) => delete n.size],
    ['inode too long', (n) => (n.inode = '1'.repeat(31))],
    ['dev missing', (n) => delete n.dev],
    ['links null', (n) => (n.links = null)],
    ['content id uppercase', (n) => (n.content = [h('A')])],
    ['content not a list', (n) => (n.content = h('a'))],
    ['subtree short', (n) => (n.subtree = 'abc')],
    ['target not base64url', (n) => (n.target = '..//')],
    ['rdev negative', (n) => (n.rdev = '-1')],
    ['xattr name empty', (n) => (n.xattrs = [['', 'dmFs']])],
    ['xattr with a third element', (n) => (n.xattrs = [['user.x', 'dmFs', 'x']])],
    ['too many xattrs', (n) => (n.xattrs = Array.from({ length: 1001 }, (_, i) => [`user.${i}`, '']))],
    ['__proto__ key', (n) => Object.defineProperty(n, '__proto__', { value: 1, enumerable: true })],
  ];
  for (const [what, breakIt] of broken) {
    it(`refuses a node with ${what}`, () => {
      const n = JSON.parse(JSON.stringify(file)) as Record<string, unknown>;
      breakIt(n);
      const b = tree([n]);
      expect(strictTree.safeParse(JSON.parse(b.toString())).success).toBe(false);
      expect(() => decodeTree(b, h('e'))).toThrow(expect.objectContaining({ code: 'MV_ERR_DATA_CORRUPT' }));
    });
  }
  it('refuses a tree with another version or an unknown key', () => {
    expect(() => decodeTree(Buffer.from(JSON.stringify({ v: 2, nodes: [] })), h('e'))).toThrow(/tree/);
    expect(() => decodeTree(tree([], { more: 1 }), h('e'))).toThrow(/tree/);
  });
});

describe('sameNode', () => {
  const all = { ...file, subtree: h('c'), target: 'Li4vYQ', rdev: '259' } as TreeNode;
  it('is true for equal nodes and sees a change in every field of the schema (an unseen one would reuse a stale tree)', () => {
    expect(sameNode(all, structuredClone(all))).toBe(true);
    for (const k of Object.keys(nodeSchema.shape) as (keyof TreeNode)[]) {
      const v = all[k];
      const changed = typeof v === 'string' ? `${v}0` : typeof v === 'number' ? v + 1 : k === 'content' ? [h('a'), h('d')] : [['user.x', 'dmFt']];
      expect(sameNode(all, { ...all, [k]: changed } as TreeNode), k).toBe(false);
      const without = { ...all };
      delete without[k];
      expect(sameNode(all, without as TreeNode), `${k} missing`).toBe(false);
    }
  });
});


describe('encodeTree', () => {
  it('orders nodes by raw name bytes (not UTF-16, not locale), whatever order they come in', () => {
    // non-UTF-8 bytes, an NFC/NFD pair, a prefix, and a byte above 0x7f that UTF-16 order would misplace
    const raws = [Buffer.from([0xff, 0x01]), Buffer.from('e\u0301', 'utf8'), Buffer.from('\u00e9', 'utf8'), Buffer.from('a'), Buffer.from('ab'), Buffer.from('B'), Buffer.from([0x7f])];
    const nodes = raws.map((r, i) => ({ ...file, name: r.toString('base64url'), display: `n${i}` }));
    const want = [...raws].sort(Buffer.compare).map((r) => r.toString('base64url'));
    for (const order of [nodes, [...nodes].reverse(), [...nodes.slice(3), ...nodes.slice(0, 3)]]) {
      const b = encodeTree(order);
      expect(decodeTree(b, h('e')).map((n) => n.name)).toEqual(want);
      expect(b.equals(encodeTree(nodes)), 'the same bytes from any input order').toBe(true);
    }
  });
});

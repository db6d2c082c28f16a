/** The one contract suite every Store adapter passes (kopia blobtesting style). Test-only. */
import { describe, it, expect } from 'vitest';
import { sha256Hex, isError, codes } from '@medvault/protocol';
import type { Store } from './store.js';

export function storeContract(label: string, make: () => Promise<Store>): void {
  describe(`Store contract: ${label}`, () => {
    const data = Buffer.from('hello medvault');
    const h = sha256Hex(data);

    it('puts, gets, has, lists and deletes', async () => {
      const s = await make();
      expect(await s.get('pack', h)).toBeUndefined();
      expect(await s.has('pack', h)).toBe(false);
      expect(await s.put('pack', h, data)).toBe(true);
      expect(await s.has('pack', h)).toBe(true);
      expect(await s.get('pack', h)).toEqual(data);
      expect(await s.get('pack', h, { offset: 6, length: 3 })).toEqual(Buffer.from('med'));
      const listed = [];
      for await (const e of s.list('pack')) listed.push(e);
      expect(listed).toEqual([{ name: h, size: data.length }]);
      const none = [];
      for await (const e of s.list('index')) none.push(e);
      expect(none).toEqual([]);
      await s.delete('pack', h);
      expect(await s.has('pack', h)).toBe(false);
      await s.delete('pack', h);
    });

    it('lists every pack once with its size, however many folders they spread over', async () => {
      const s = await make();
      const want = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const b = Buffer.from(`pack ${i}`.repeat(1 + (i % 5)));
        await s.put('pack', sha256Hex(b), b);
        want.set(sha256Hex(b), b.length);
      }
      const listed = new Map<string, number>();
      for await (const e of s.list('pack')) {
        expect(listed.has(e.name), `${e.name} listed twice`).toBe(false);
        listed.set(e.name, e.size);
      }
      expect(listed).toEqual(want);
    });

    it('never overwrites', async () => {
      const s = await make();
      expect(await s.put('lock', 'writer', Buffer.from('a'))).toBe(true);
      expect(await s.put('lock', 'writer', Buffer.from('b'))).toBe(false);
      expect(await s.get('lock', 'writer')).toEqual(Buffer.from('a'));
      expect(await s.put('config', 'config', Buffer.from('c'))).toBe(true);
      expect(await s.get('config', 'config')).toEqual(Buffer.from('c'));
      const cfg = [];
      for await (const e of s.list('config')) cfg.push(e);
      expect(cfg).toEqual([{ name: 'config', size: 1 }]);
    });

    it('refuses a content-addressed name that is not the hash of the bytes', async () => {
      const s = await make();
      const err = await s.put('snapshot', sha256Hex(Buffer.from('other')), data).catch((e) => e);
      expect(isError(err, codes.DATA_CORRUPT)).toBe(true);
      const listed = [];
      for await (const e of s.list('snapshot')) listed.push(e);
      expect(listed).toEqual([]);
    });

    it('refuses names that could escape the layout', async () => {
      const s = await make();
      for (const bad of ['../x', 'a/b', '', '.', h.toUpperCase()]) await expect(s.get('index', bad)).rejects.toThrow();
      for (const bad of ['../x', 'a/b', '', '.', '..']) await expect(s.put('lock', bad, data)).rejects.toThrow();
    });
  });
}

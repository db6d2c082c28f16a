/**
 * A file rewritten in place while it is read, by a writer that puts its mtime back each time (as
 * `rsync --inplace --times` or `cp --preserve` into an existing file do): its size and mtime never
 * change, only its ctime does. The snapshot MUST hold one whole version, or report the file.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testRepo, tempDir } from '../repo/testing.js';
import { Archiver } from './archiver.js';
import { Restorer } from '../restore/restorer.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('a file rewritten in place with its mtime put back', () => {
  it('is stored as one whole version or reported, never torn', async () => {
    const dir = await tempDir('mv-rewrite-');
    const src = join(dir, 'src');
    mkdirSync(src);
    const size = 32 << 20;
    const a = Buffer.alloc(size, 0x41);
    const b = Buffer.alloc(size, 0x42);
    const file = join(src, 'study.dcm');
    writeFileSync(file, a);
    utimesSync(file, 1_600_000_000, 1_600_000_000);
    writeFileSync(join(dir, 'a'), a);
    writeFileSync(join(dir, 'b'), b);
    // rewrites the file in place, alternating a and b, 1 MiB at a time, puts the mtime back after each version, then rests 40 ms
    const script = `const fs=require('fs');const v=[fs.readFileSync(process.argv[2]),fs.readFileSync(process.argv[3])];const fd=fs.openSync(process.argv[1],'r+');for(let i=0;;i++){const d=v[i%2];for(let o=0;o<d.length;o+=1<<20)fs.writeSync(fd,d,o,1<<20,o);fs.futimesSync(fd,1600000000,1600000000);Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,40);}`;
    const writer = spawn(process.execPath, ['-e', script, file, join(dir, 'a'), join(dir, 'b')], { stdio: 'ignore' });
    const t = await testRepo();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await new Archiver(t.repo).backup({ store: 's', source: src, job: 'full' });
      writer.kill('SIGKILL');
      const target = join(dir, 'restored');
      const restored = await new Restorer(t.repo).restore({ snapshot: r.snapshot, paths: [], target, mode: 'new' });
      const reported = r.errors.some((e) => e.path === 'study.dcm');
      if (!reported) {
        expect(restored.failed).toEqual([]);
        expect([sha(a), sha(b)]).toContain(sha(readFileSync(join(target, 'study.dcm'))));
      }
    } finally {
      writer.kill('SIGKILL');
      await t.repo.close();
    }
  });
});

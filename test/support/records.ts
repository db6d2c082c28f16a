/**
 * Record stores for the demo and the end-to-end tests: the real samples in ../shared/data/records
 * when present, or a generated clinic-like store (FHIR-like JSON, DICOM-like images, HL7 v2
 * messages) with awkward names: not UTF-8, NFC/NFD twins, spaces, long names, empty files and
 * folders. And a byte-exact fingerprint of a tree, to compare before and after a restore.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SAMPLE_RECORDS = fileURLToPath(new URL('../../../shared/data/records', import.meta.url));

export function sampleRecords(): string | undefined {
  return existsSync(join(SAMPLE_RECORDS, 'MANIFEST.sha256')) ? SAMPLE_RECORDS : undefined;
}

const families = ['Okafor', 'Lindqvist', 'Haddad', 'Nakamura', 'Moreau', 'Kowalski', 'Abara', 'Silva'];
const givens = ['Amara', 'Johan', 'Leila', 'Kenji', 'Claire', 'Piotr', 'Ngozi', 'Rafael'];

/** A deterministic-per-seed pseudo-random generator (xorshift), so generated stores are repeatable. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return ((x >>> 0) % 1_000_000) / 1_000_000;
  };
}

/** Writes a generated clinic record store into `dir` (about 5 MB) with a MANIFEST.sha256. */
export function generateRecords(dir: string, { patients = 40, seed = 7 } = {}): void {
  const r = rng(seed);
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  for (const d of ['fhir', 'dicom', 'hl7', 'scans', 'empty folder/nested']) mkdirSync(join(dir, d), { recursive: true });
  for (let i = 0; i < patients; i++) {
    const name = { family: pick(families), given: [pick(givens)] };
    const bundle = {
      resourceType: 'Bundle', type: 'collection',
      entry: [
        { resource: { resourceType: 'Patient', id: `pat-${i}`, name: [name], birthDate: `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 9}` } },
        ...Array.from({ length: 5 + (i % 7) }, (_, k) => ({
          resource: { resourceType: 'Observation', id: `obs-${i}-${k}`, code: { text: 'Heart rate' }, valueQuantity: { value: 60 + Math.floor(r() * 40), unit: '/min' } },
        })),
      ],
    };
    writeFileSync(join(dir, 'fhir', `${name.family}_${name.given[0]}_${i}.json`), JSON.stringify(bundle, null, 2));
    writeFileSync(
      join(dir, 'hl7', `ADT_A01_${i}.hl7`),
      `MSH|^~\\&|EHR|CLINIC|LAB|CLINIC|20261203${String(i).padStart(4, '0')}||ADT^A01|MSG${i}|P|2.5\rPID|1||${i}^^^CLINIC||${name.family}^${name.given[0]}\r`,
    );
    const image = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from(`\x08\x00\x20\x00DA\x08\x0020261203PATIENT^${name.family}`), randomBytes(20_000 + Math.floor(r() * 200_000))]);
    writeFileSync(join(dir, 'dicom', `IM${String(i).padStart(5, '0')}.dcm`), image);
  }
  // Awkward names: not UTF-8, NFC/NFD twins, spaces and punctuation, a long name, an empty file.
  writeFileSync(Buffer.concat([Buffer.from(join(dir, 'scans') + '/scan-'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('.pdf')]), randomBytes(5000));
  writeFileSync(join(dir, 'scans', 'caf\u00e9-consent.pdf'), 'NFC twin');
  writeFileSync(join(dir, 'scans', 'cafe\u0301-consent.pdf'), 'NFD twin');
  writeFileSync(join(dir, 'scans', 'referral (copy) #2 & notes.txt'), 'referral');
  writeFileSync(join(dir, 'scans', `${'long-name-'.repeat(24)}.txt`), 'long');
  writeFileSync(join(dir, 'scans', 'empty.txt'), '');
  writeFileSync(join(dir, 'MANIFEST.sha256'), manifestText(dir));
}

/** `sha256  ./path` lines for every regular file with a UTF-8 name, sorted (like sha256sum). */
function manifestText(dir: string): string {
  const lines: string[] = [];
  for (const [path, entry] of fingerprint(dir)) {
    if (!entry.startsWith('file:') || path === 'MANIFEST.sha256') continue;
    const name = Buffer.from(path, 'binary');
    if (!Buffer.from(name.toString('utf8')).equals(name)) continue;
    lines.push(`${entry.slice(5)}  ./${name.toString('utf8')}`);
  }
  return `${lines.sort().join('\n')}\n`;
}

/**
 * Every entry below `dir` (names as raw bytes in 'binary' strings) → its type and content hash
 * (files), target (symlinks) or 'dir'. Two trees are identical when their fingerprints are.
 */
export function fingerprint(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (abs: Buffer, rel: Buffer | undefined) => {
    for (const name of readdirSync(abs, { encoding: 'buffer' })) {
      const a = Buffer.concat([abs, Buffer.from('/'), name]);
      const r = rel ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const st = lstatSync(a);
      const key = r.toString('binary');
      if (st.isDirectory()) {
        out.set(key, 'dir');
        walk(a, r);
      } else if (st.isSymbolicLink()) out.set(key, `link:${readlinkSync(a, { encoding: 'buffer' }).toString('hex')}`);
      else if (st.isFile()) out.set(key, `file:${createHash('sha256').update(readFileSync(a)).digest('hex')}`);
      else out.set(key, 'special');
    }
  };
  walk(Buffer.from(dir), undefined);
  return out;
}

/** Checks every line of `dir/MANIFEST.sha256`; returns the paths that are missing or differ. */
export function checkManifest(dir: string): { checked: number; bad: string[] } {
  const bad: string[] = [];
  let checked = 0;
  for (const line of readFileSync(join(dir, 'MANIFEST.sha256'), 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) continue;
    checked++;
    const file = join(dir, m[2]!);
    let ok = false;
    try {
      ok = createHash('sha256').update(readFileSync(file)).digest('hex') === m[1];
    } catch {
      ok = false;
    }
    if (!ok) bad.push(m[2]!);
  }
  return { checked, bad };
}

/** Paths that differ between two fingerprints (missing, extra or changed). */
export function diffFingerprints(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(Buffer.from(k, 'binary').toString('utf8'));
  for (const k of b.keys()) if (!a.has(k)) out.push(Buffer.from(k, 'binary').toString('utf8'));
  return out;
}

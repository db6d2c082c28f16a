/**
 * offsite/: the controller's care of the off-site copy once it is stored: reading copies back
 * (checkCopy), the scrub that finds damaged copies and asks sites to send them again, and
 * off-site retention with legal holds.
 */
import { createHash } from 'node:crypto';
import { OBJECT_HEADER, decodePart, streams } from '@medvault/protocol';
import type { Bus } from '../bus.js';

/** What a stored copy must be: its hash and size. */
export interface ExpectedCopy {
  hash: string;
  size: number;
}

/**
 * Reads the off-site copy on `subject` back, streamed (memory of one part); undefined when parts
 * 0…n-1 are there in order, each describes this object, and the SHA-256 of the whole equals
 * `hash`; else why not. `pace(bytes)` is awaited after each part (the scrub's rate limit).
 */
export async function checkCopy(
  bus: Pick<Bus, 'scanSubject'>,
  subject: string,
  want: ExpectedCopy,
  pace: (bytes: number) => Promise<void> = async () => {},
): Promise<string | undefined> {
  const hash = createHash('sha256');
  let next = 0;
  let parts: number | undefined;
  let bytes = 0;
  for await (const m of bus.scanSubject(streams.offsite.name, subject)) {
    let p;
    try {
      p = decodePart(m.header(OBJECT_HEADER), m.data.byteLength);
    } catch (err) {
      return `message ${m.seq}: ${(err as Error).message}`;
    }
    parts ??= p.parts;
    if (p.hash !== want.hash || p.size !== want.size || p.parts !== parts) return `part ${p.part} (message ${m.seq}) describes another object`;
    if (p.part !== next) return `part ${p.part} (message ${m.seq}) where part ${next} belongs`;
    hash.update(m.data);
    bytes += m.data.byteLength;
    next++;
    await pace(m.data.byteLength);
  }
  if (parts === undefined) return 'no part is stored';
  if (next < parts) return `${parts - next} of ${parts} parts missing`;
  if (bytes !== want.size) return `${bytes} bytes stored, ${want.size} expected`;
  const actual = hash.digest('hex');
  return actual === want.hash ? undefined : `SHA-256 ${actual}, not ${want.hash}`;
}

/**
 * The body of the off-site fetcher's thread (fetcher.ts): its own Link (its own NATS connection
 * and TLS) and an OffsiteStore without a cache; answers {seq, kind, hash} with the object's
 * verified bytes (transferred, not copied), {seq, missing} or {seq, error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MedvaultError, ObjectKind } from '@medvault/protocol';
import { openLink, type LinkOptions } from '../replicate/link.js';
import { OffsiteStore } from './offsite-store.js';

const d = workerData as { link: LinkOptions; site: string; repo: string };
const opened = openLink(d.link).then((link) => new OffsiteStore(link, d.site, d.repo, { cachePacks: 0 }));
opened.catch(() => undefined); // reported per request below

parentPort!.on('message', (m: { seq: number; kind: ObjectKind; hash: string }) => {
  opened
    .then((store) => store.read(m.kind, m.hash))
    .then(
      (b) => (b === undefined ? parentPort!.postMessage({ seq: m.seq, missing: true }) : parentPort!.postMessage({ seq: m.seq, data: b }, [b.buffer as ArrayBuffer])),
      (err) => parentPort!.postMessage({ seq: m.seq, error: { code: (err as MedvaultError).code, message: (err as Error).message } }),
    );
});

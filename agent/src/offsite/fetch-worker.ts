/**
 * The body of the off-site fetcher's thread (fetcher.ts): its own Link (its own NATS connection
 * and TLS) and an OffsiteStore without a cache; answers each request with the object's verified
 * bytes, transferred, not copied (undefined when it is not off site).
 */
import { workerData } from 'node:worker_threads';
import { serveCalls } from '@medvault/protocol/worker';
import { openLink, type LinkOptions } from '../replicate/link.js';
import { OffsiteStore } from './offsite-store.js';
import type { FetchRequest } from './fetcher.js';

const d = workerData as { link: LinkOptions; site: string; repo: string };
const opened = openLink(d.link).then((link) => new OffsiteStore(link, d.site, d.repo, { cachePacks: 0 }));
opened.catch(() => undefined); // each request gets the error

serveCalls(async (r: FetchRequest) => {
  const b = await (await opened).read(r.kind, r.hash);
  return { result: b, transfer: b ? [b.buffer as ArrayBuffer] : [] };
});

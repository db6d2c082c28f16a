/**
 * Builds and starts the controller from its dependencies (NATS, signing key, clock, config, log):
 * streams → projections caught up → ingest → HTTP API. `main.ts` supplies the real ones; tests
 * supply a real nats-server and an injected clock.
 */
import type { SigningKey } from '@medvault/protocol';
import { Authenticator } from './auth/authenticator.js';
import { SessionStore } from './auth/sessions.js';
import { USERS_BUCKET, UserStore } from './auth/user-store.js';
import type { Tail } from './bus.js';
import type { ControllerConfig } from './config.js';
import { FleetRegistry } from './fleet/registry.js';
import { buildApi } from './http/server.js';
import { Ingestor } from './ingest/ingestor.js';
import { OffsiteIndex } from './ingest/offsite-index.js';
import type { Log } from './log.js';
import type { Nats } from './nats.js';
import { OrderBook } from './orders/order-book.js';
import { OrderIssuer } from './orders/order-issuer.js';
import { followStreams } from './projections.js';

export interface AppDeps {
  nats: Pick<Nats, 'bus' | 'bucket' | 'ensureStreams'>;
  key: SigningKey;
  clock: () => number;
  config: Pick<ControllerConfig, 'http' | 'sessions' | 'ingest'>;
  log: Log;
  /** Start the inbox consumer (default true); tests of the API alone may skip it. */
  ingest?: boolean;
}

export interface App {
  readonly url: string;
  readonly fleet: FleetRegistry;
  readonly index: OffsiteIndex;
  readonly book: OrderBook;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly ingestor: Ingestor;
  /** Stops HTTP, ingest and the stream followers; the NATS connection stays open (the caller owns it). */
  stop(): Promise<void>;
}

export async function startApp(d: AppDeps): Promise<App> {
  const { bus } = d.nats;
  await d.nats.ensureStreams();
  const index = new OffsiteIndex();
  const book = new OrderBook();
  const fleet = new FleetRegistry();
  const tails: Tail[] = await followStreams(bus, { index, book, fleet }, d.log.child({ component: 'projections' }));
  d.log.info({ sites: fleet.sites().length, offsiteSites: index.sites().length }, 'projections rebuilt from JetStream');

  const ingestor = new Ingestor({
    bus,
    index,
    key: d.key,
    clock: d.clock,
    log: d.log.child({ component: 'ingest' }),
    limits: { maxObjectBytes: d.config.ingest.max_object_bytes },
  });
  if (d.ingest ?? true) await ingestor.start();

  const users = new UserStore(await d.nats.bucket(USERS_BUCKET, { history: 5 }));
  const sessions = new SessionStore(d.clock, { idleMs: d.config.sessions.idle_timeout_s * 1000, maxMs: d.config.sessions.max_age_s * 1000 });
  const auth = new Authenticator({ users, sessions, clock: d.clock, log: d.log.child({ component: 'auth' }) });
  const knownSite = (site: string) => fleet.hasSite(site) || index.totals(site).objects > 0;
  const issuer = new OrderIssuer({ bus, book, key: d.key, clock: d.clock, log: d.log.child({ component: 'orders' }), knownSite });
  const api = buildApi({ auth, fleet, index, book, issuer, clock: d.clock, log: d.log.child({ component: 'http' }), ingestStats: () => ingestor.stats() });
  await api.listen({ host: d.config.http.host, port: d.config.http.port });
  const addr = api.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : d.config.http.port;
  const host = d.config.http.host.includes(':') ? `[${d.config.http.host}]` : d.config.http.host;
  const url = `http://${host}:${port}`;
  d.log.info({ url }, 'listening');

  return {
    url,
    fleet,
    index,
    book,
    users,
    sessions,
    ingestor,
    async stop() {
      await api.close();
      await ingestor.stop();
      await Promise.all(tails.map((t) => t.stop()));
    },
  };
}

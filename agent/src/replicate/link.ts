/**
 * The agent's only NATS adapter: publish to JetStream with a message id, and follow a stream from a
 * sequence. Everything else in the agent talks to the `Link` interface, so tests can swap it and
 * no other file imports the NATS client.
 *
 * With a site identity (nkey seed + CA) it connects over TLS only, and uses the inbox prefix
 * `_INBOX.<site>` its NATS permissions allow. It needs no JetStream API beyond what a site may do:
 * `follow` creates its own ephemeral consumer with the filter in the create subject
 * ($JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>), then reads it with consumer info and
 * pulls; it never asks for stream info, lists consumers or deletes anything (an idle consumer goes
 * away by itself after its inactivity threshold). `read` makes its consumer the same way.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect, headers as natsHeaders, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { MedvaultError, codes, natsTls, readNkeySeed } from '@medvault/protocol';

export interface LinkMessage {
  subject: string;
  seq: number;
  /** The payload; empty for a headers-only read, where header `Nats-Msg-Size` gives its length. */
  data: Uint8Array;
  header(name: string): string | undefined;
}

/** Bytes a read keeps in flight; callers reading concurrently keep (reads × this) under 64 MiB. */
export const READ_MAX_BYTES = 8 * 1024 * 1024;

/** Header a headers-only read carries instead of the payload: its length in bytes. */
export const MSG_SIZE_HEADER = 'Nats-Msg-Size';

export interface Link {
  /** Publishes and resolves once JetStream acked it (a duplicate msgID is acked too). */
  publish(subject: string, payload: Uint8Array, opts: { msgID: string; headers?: Record<string, string> }): Promise<void>;
  /**
   * Calls `onMessage` for every message of `stream` matching `filter`, in stream order, starting at
   * sequence `fromSeq`, awaiting each call; reconnects and resumes after the last handled message
   * until `stop()`. Messages are never skipped; after a reconnect some may be delivered again.
   */
  follow(stream: string, filter: string, fromSeq: number, onMessage: (m: LinkMessage) => Promise<void>): Follower;
  /**
   * Every message of `stream` matching `filter` that exists when called, in stream order, then
   * ends (messages published meanwhile may or may not be included). With `headersOnly` the
   * payloads stay on the server (listing objects). A read that gets no message for the link's
   * stall timeout fails with MV_ERR_TRANSPORT_FAILED instead of hanging; so does a lost connection.
   */
  read(stream: string, filter: string, opts?: { headersOnly?: boolean }): AsyncIterable<LinkMessage>;
  readonly connected: boolean;
  close(): Promise<void>;
}

export interface Follower {
  stop(): Promise<void>;
  /**
   * Milliseconds since the follower last had proof its consumer works (made, a message, a pull or
   * a heartbeat); 0 while a message is being handled. Measured on the monotonic clock, as its stall
   * timer (a wall-clock step changes neither): a consumer silent for FOLLOW_STALL_MS while connected
   * is given up and made again.
   * Giving one up is no proof: while re-creation does not help, the silence keeps growing.
   */
  readonly silentMs: number;
}

/** How long close() lets a drain take (pending publishes flushed, subscriptions ended) before it just closes. */
const CLOSE_DRAIN_MS = 5000;

/**
 * A follower's pulls expire after this; the server sends an idle heartbeat every half of it, and two
 * missed make the consumer again (a node gone), so receipts and orders resume within ~10 s of it.
 */
const FOLLOW_PULL_MS = 10_000;

/** A follower's consumer silent this long while connected (heartbeats come every ~5 s) is made again. */
export const FOLLOW_STALL_MS = 120_000;

export interface LinkOptions {
  servers: string[];
  name: string;
  /** The site: its inbox prefix is `_INBOX.<site>` (the only inbox its credentials may read). */
  site?: string;
  /** File holding the site's nkey seed. */
  nkeySeedFile?: string;
  /** CA certificate of the NATS server: TLS is then required. */
  caFile?: string;
  /** Milliseconds to wait for a JetStream ack before the publish fails and is retried later. */
  ackTimeoutMs?: number;
  /** Milliseconds `read` waits for the next message before it fails (default 30 s). */
  readStallMs?: number;
  /**
   * For one-off commands: fail with MV_ERR_TRANSPORT_FAILED naming the servers when the first
   * connection fails, instead of waiting for NATS forever as the daemon does.
   */
  failFast?: boolean;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** Where a site's nkey seed comes from, for the error when the file is not one. */
const SITE_SEED_HINT = "the site's nkey seed is site.nk from its enrolment bundle (medvault-controller site add), mode 0600";

/** How long the daemon's link waits between rounds of first connection attempts (every server once). */
const FIRST_CONNECT_RETRY_MS = 1000;

interface Connection {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * Opens the link; a seed file that cannot be read or is not an nkey seed is MV_ERR_KEY_INVALID
 * naming it, before any connection. With `failFast` it resolves once connected. Without (the
 * daemon) it resolves at once, not connected yet, and connects in the background until close():
 * one log line when NATS is not reachable (naming the servers and why), one when it connects.
 * Until then the link behaves as during an outage after a connection: `connected` is false, a
 * publish or read waits up to the ack timeout for the connection and then fails with
 * MV_ERR_TRANSPORT_FAILED (retryable), and followers start once it is made.
 */
export async function openLink(opts: LinkOptions): Promise<Link> {
  const seed = opts.nkeySeedFile ? readNkeySeed(opts.nkeySeedFile, (f) => readFileSync(f, 'utf8'), SITE_SEED_HINT) : undefined;
  const ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
  const where = opts.servers.join(',');
  // One attempt per server; after the first connection the client itself reconnects for ever (or 3 times).
  const dial = () =>
    connect({
      servers: opts.servers,
      name: opts.name,
      maxReconnectAttempts: opts.failFast ? 3 : -1,
      reconnectTimeWait: 500,
      ...(opts.site ? { inboxPrefix: `_INBOX.${opts.site}` } : {}),
      ...(seed ? { authenticator: nkeyAuthenticator(seed) } : {}),
      ...(opts.caFile ? { tls: natsTls(opts.caFile) } : {}),
    });
  let conn: Connection | undefined;
  let connected = true;
  let closed = false;
  /** Followers' hooks run on each reconnect. */
  const onReconnect = new Set<() => void>();
  const use = async (nc: NatsConnection): Promise<Connection> => {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') connected = false;
        if (s.type === 'reconnect') connected = true;
        if (s.type === 'disconnect' || s.type === 'reconnect') opts.log?.(`nats ${s.type}`, {});
        if (s.type === 'reconnect') for (const f of onReconnect) f();
      }
    })();
    // No account-info check: a site may not call $JS.API.INFO.
    return (conn = { nc, js: jetstream(nc, { timeout: ackTimeoutMs }), jsm: await jetstreamManager(nc, { checkAPI: false, timeout: ackTimeoutMs }) });
  };
  let retry: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  let ready: Promise<Connection | undefined>;
  if (opts.failFast) {
    try {
      ready = Promise.resolve(await use(await dial()));
    } catch (cause) {
      throw new MedvaultError(codes.TRANSPORT_FAILED, `cannot connect to NATS at ${where}: ${(cause as Error).message}`, { cause, retryable: true });
    }
  } else {
    // Resolves with the connection, or undefined when closed before one was made.
    ready = (async () => {
      let said: string | undefined;
      while (!closed) {
        try {
          const nc = await dial();
          if (closed) return void (await nc.close());
          opts.log?.('nats connected', { servers: opts.servers });
          return await use(nc);
        } catch (err) {
          const why = (err as Error).message;
          if (why !== said) opts.log?.('NATS not reachable yet; backups go on locally, replication, heartbeats and orders wait for it', { servers: opts.servers, error: why });
          said = why;
        }
        await new Promise<void>((wake) => (retry = { timer: setTimeout(wake, FIRST_CONNECT_RETRY_MS), wake }));
      }
      return undefined;
    })();
  }
  /** The connection, waiting up to `ms` for the first one (then failing as a publish does during an outage). */
  const connection = async (ms: number): Promise<Connection> => {
    if (conn) return conn;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
    const c = await Promise.race([ready, late]).finally(() => clearTimeout(timer));
    if (!c) throw new MedvaultError(codes.TRANSPORT_FAILED, `not connected to NATS at ${where} yet`, { retryable: true });
    return c;
  };
  const prefix = `mv_${(opts.site ?? 'agent').replace(/[^A-Za-z0-9_-]/g, '_')}`;

  return {
    get connected() {
      return conn !== undefined && connected && !conn.nc.isClosed();
    },
    async publish(subject, payload, { msgID, headers }) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(headers ?? {})) h.set(k, v);
      const { js } = await connection(ackTimeoutMs);
      try {
        await js.publish(subject, payload, { msgID, headers: h });
      } catch (cause) {
        throw new MedvaultError(codes.TRANSPORT_FAILED, `publish to ${subject} failed: ${(cause as Error).message}`, { cause, retryable: true });
      }
    },
    follow(stream, filter, fromSeq, onMessage) {
      let next = fromSeq;
      let stopped = false;
      let current: { stop(): void } | undefined;
      // Silence is timed on the monotonic clock: a wall-clock step (NTP correcting an appliance's
      // dead RTC) must neither make a live follower look dead to the watchdog nor re-make its consumer.
      const clock = () => performance.now();
      let liveAt = clock();
      // When the stall timer last gave a consumer up: the next give-up waits FOLLOW_STALL_MS from
      // then, but silentMs keeps counting from liveAt (the daemon's health check watches it).
      let gaveUpAt = -Infinity;
      let busy = false;
      const live = () => (liveAt = clock());
      // A consumer gone without a notification (the loop below would wait for ever): make it again.
      const stallTimer = setInterval(() => {
        if (!busy && connected && clock() - Math.max(liveAt, gaveUpAt) > FOLLOW_STALL_MS) {
          opts.log?.('follow: consumer silent; making it again', { stream, silentMs: Math.round(clock() - liveAt) });
          gaveUpAt = clock();
          current?.stop();
        }
      }, 10_000);
      stallTimer.unref();
      // After a reconnect the client checks its consumer with an info request and, until one is
      // answered, neither pulls nor watches heartbeats: a consumer on the node that went away (the
      // one this client was connected to, killed) would hold it up until that node returns. A new
      // consumer from the next sequence costs one request and loses nothing.
      const remake = () => {
        opts.log?.('follow: reconnected; making the consumer again', { stream });
        current?.stop();
      };
      onReconnect.add(remake);
      let halt!: () => void;
      const halted = new Promise<undefined>((r) => (halt = () => r(undefined)));
      const done = (async () => {
        // Not connected yet (the daemon started with NATS down): start once it is, or end if stopped first.
        const { js, jsm } = conn ?? (await Promise.race([ready, halted])) ?? {};
        while (!stopped && js && jsm) {
          try {
            const name = `${prefix}_${randomBytes(9).toString('hex')}`;
            await jsm.consumers.add(stream, {
              name,
              filter_subject: filter, // a single subject: nats-server 2.9 has no multi-filter consumers
              deliver_policy: DeliverPolicy.StartSequence,
              opt_start_seq: Math.max(1, next),
              ack_policy: AckPolicy.None,
              inactive_threshold: 120_000_000_000,
              mem_storage: true,
              num_replicas: 1,
            });
            const consumer = await js.consumers.get(stream, name);
            // Its consumer gone (a restarted server forgets memory consumers): end, and make a new one.
            // Pulls expire after FOLLOW_PULL_MS, so the server's idle heartbeats come every half of it.
            const messages = await consumer.consume({ max_messages: 64, expires: FOLLOW_PULL_MS, abort_on_missing_resource: true });
            current = { stop: () => void messages.stop() };
            live();
            if (stopped) messages.stop();
            void (async () => {
              for await (const st of messages.status()) {
                if (st.type === 'heartbeat' || st.type === 'next') live();
                // Two heartbeats missed: the node holding this one-replica consumer died or lost it
                // (a cluster node killed). The client would go on asking that consumer until the node
                // returns; a new consumer is placed on a node that is up.
                if (st.type === 'heartbeats_missed' && !busy) {
                  opts.log?.('follow: consumer heartbeats missed; making it again', { stream, missed: st.count });
                  messages.stop();
                }
              }
            })().catch(() => undefined);
            for await (const m of messages) {
              live();
              if (m.seq < next) continue;
              busy = true;
              try {
                await onMessage({ subject: m.subject, seq: m.seq, data: m.data, header: (n) => m.headers?.get(n) || undefined });
              } finally {
                busy = false;
                live();
              }
              next = m.seq + 1;
            }
          } catch (err) {
            if (!stopped) opts.log?.('follow failed; retrying', { stream, error: (err as Error).message });
          }
          if (!stopped) await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      return {
        async stop() {
          stopped = true;
          halt();
          onReconnect.delete(remake);
          clearInterval(stallTimer);
          current?.stop();
          await done;
        },
        get silentMs() {
          return busy ? 0 : Math.round(clock() - liveAt);
        },
      };
    },
    async *read(stream, filter, o = {}) {
      const fail = (what: string, cause?: unknown) =>
        new MedvaultError(codes.TRANSPORT_FAILED, `reading ${filter} from ${stream}: ${what}${cause ? `: ${(cause as Error).message}` : ''}`, { cause, retryable: true });
      const stallMs = opts.readStallMs ?? 30_000;
      const { js, jsm } = await connection(ackTimeoutMs);
      const name = `${prefix}_${randomBytes(9).toString('hex')}`;
      let remaining: number;
      let messages: ConsumerMessages;
      try {
        const info = await jsm.consumers.add(stream, {
          name,
          filter_subject: filter,
          deliver_policy: DeliverPolicy.All,
          ack_policy: AckPolicy.None,
          inactive_threshold: 30_000_000_000,
          mem_storage: true,
          num_replicas: 1,
          ...(o.headersOnly ? { headers_only: true } : {}),
        });
        remaining = info.num_pending;
        if (remaining === 0) return;
        const consumer = await js.consumers.get(stream, name);
        // 8 MiB in flight per read, so a few reads at once stay well under the server's 64 MiB
        // max_pending per connection (past it the server drops the connection as a slow consumer).
        messages = await consumer.consume({ ...(o.headersOnly ? { max_messages: 1024 } : { max_bytes: READ_MAX_BYTES }), abort_on_missing_resource: true });
      } catch (cause) {
        throw fail('cannot create a consumer', cause);
      }
      const it = messages[Symbol.asyncIterator]();
      try {
        while (remaining > 0) {
          let timer: NodeJS.Timeout | undefined;
          const stalled = new Promise<'stalled'>((r) => (timer = setTimeout(() => r('stalled'), stallMs)));
          const next = await Promise.race([it.next(), stalled]).finally(() => clearTimeout(timer));
          if (next === 'stalled') throw fail(`no message for ${stallMs} ms with ${remaining} still to come`);
          if (next.done) throw fail(`ended with ${remaining} messages still to come`);
          const m = next.value;
          remaining = m.info.pending === 0 ? 0 : remaining - 1;
          yield { subject: m.subject, seq: m.seq, data: m.data, header: (n: string) => m.headers?.get(n) || undefined };
        }
      } finally {
        messages.stop();
      }
    },
    async close() {
      closed = true;
      if (retry) (clearTimeout(retry.timer), retry.wake());
      if (!conn) return; // a dial still under way closes what it makes
      const { nc } = conn;
      // A drain waits for the server's answers: a server that accepts TCP but answers nothing
      // (stopped, wedged) would hold every command's exit for minutes, until pings time out.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), CLOSE_DRAIN_MS)));
      const drained = await Promise.race([nc.drain().then(() => 'drained' as const, () => 'failed' as const), late]).finally(() => clearTimeout(timer));
      if (drained !== 'drained') await nc.close();
    },
  };
}

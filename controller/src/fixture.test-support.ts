/**
 * Test fixture: a real nats-server, a controller app on a free port with an injected clock, and
 * helpers to act as an agent (send object parts, publish events) and to read what the controller wrote.
 */
import { randomBytes } from 'node:crypto';
import {
  OBJECT_HEADER,
  encode,
  encodePartHeader,
  generateSigningKey,
  objectParts,
  sha256Hex,
  streams,
  subjects,
  type ObjectKind,
  type SigningKey,
} from '@medvault/protocol';
import { NatsServer } from '../../test/support/nats-server.js';
import { startApp, type App } from './app.js';
import type { Role } from './auth/roles.js';
import { totpCode } from './auth/totp.js';
import type { StoredMessage } from './bus.js';
import { createLog, silentLog } from './log.js';
import { openNats, type Nats } from './nats.js';

export const SITE = 'clinic-a';
export const REPO = 'aa'.repeat(16);

export interface Fixture {
  server: NatsServer;
  nats: Nats;
  key: SigningKey;
  app: App;
  now: { value: number };
  /** TOTP secrets of the users added with addUser, by name. */
  secrets: Record<string, string>;
  /** Stops the app and starts a fresh one on the same NATS (projections rebuilt from the streams). */
  restart(): Promise<App>;
  dispose(): Promise<void>;
}

export async function startFixture(opts: { ingest?: boolean; maxObjectBytes?: number; fourEyes?: boolean; webhooks?: string[] } = {}): Promise<Fixture> {
  const server = await NatsServer.start();
  const nats = await openNats({ servers: [server.url] });
  const key = generateSigningKey();
  const now = { value: Date.now() };
  const start = () =>
    startApp({
      nats,
      key,
      clock: () => now.value,
      config: {
        http: { host: '127.0.0.1', port: 0 },
        sessions: { idle_timeout_s: 900, max_age_s: 43200 },
        ingest: { max_object_bytes: opts.maxObjectBytes ?? 64 * 1024 * 1024 },
        orders: { four_eyes_overwrite: opts.fourEyes ?? false },
        break_glass: { enabled: true, session_minutes: 30 },
        ...(opts.webhooks ? { alerts: { webhooks: opts.webhooks, min_severity: 'warning' as const } } : {}),
      },
      log: process.env.MV_TEST_LOG ? createLog(process.env.MV_TEST_LOG) : silentLog(),
      ...(opts.ingest !== undefined ? { ingest: opts.ingest } : {}),
    });
  const f: Fixture = {
    server,
    nats,
    key,
    now,
    secrets: {},
    app: await start(),
    async restart() {
      await f.app.stop();
      f.app = await start();
      return f.app;
    },
    async dispose() {
      await f.app.stop().catch(() => undefined);
      await nats.close().catch(() => undefined);
      await server.dispose();
    },
  };
  return f;
}

/** The password of every user added with addUser. */
export const PASSWORD = 'correct horse battery staple';

/** What the API answered: status, JSON body (undefined when it is not JSON), raw text and headers. */
export interface ApiAnswer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

/** One call to the app's HTTP API: `body` as JSON (a string is sent as it is), `token` as the bearer session. */
export async function call(f: Pick<Fixture, 'app'>, method: string, path: string, body?: unknown, token?: string): Promise<ApiAnswer> {
  const res = await fetch(`${f.app.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json, text, headers: res.headers };
}

/** Adds user `name` with `role` and PASSWORD, keeping the TOTP secret in f.secrets. */
export async function addUser(f: Pick<Fixture, 'app' | 'now' | 'secrets'>, name: string, role: Role): Promise<void> {
  f.secrets[name] = (await f.app.users.add(name, role, PASSWORD, f.now.value)).totpSecret;
}

/** Logs `user` in with PASSWORD and a TOTP code of a fresh step (the clock moves 30 s); resolves with the session token. */
export async function login(f: Pick<Fixture, 'app' | 'now' | 'secrets'>, user: string): Promise<string> {
  f.now.value += 30_000;
  const r = await call(f, 'POST', '/api/v1/login', { user, password: PASSWORD, totp: totpCode(f.secrets[user]!, f.now.value) });
  if (r.status !== 200) throw new Error(`login of ${user}: HTTP ${r.status} ${r.text}`);
  return r.body.token as string;
}

/**
 * Adds technician 'tess' and viewer 'vic' (addUser) and logs both in, tess first (each login moves
 * the clock 30 s): their session tokens.
 */
export async function addStaff(f: Pick<Fixture, 'app' | 'now' | 'secrets'>): Promise<{ tech: string; viewer: string }> {
  await addUser(f, 'tess', 'technician');
  await addUser(f, 'vic', 'viewer');
  const tech = await login(f, 'tess');
  return { tech, viewer: await login(f, 'vic') };
}

/** Sends `data` as an agent would: its parts on the inbox subject, each with its Mv-Object header. */
export async function sendObject(
  f: Pick<Fixture, 'nats'>,
  data: Uint8Array,
  o: { site?: string; repo?: string; kind?: ObjectKind; hash?: string; msgIdSuffix?: string } = {},
): Promise<{ hash: string; parts: number }> {
  const site = o.site ?? SITE;
  const repo = o.repo ?? REPO;
  const kind = o.kind ?? 'pack';
  const hash = o.hash ?? sha256Hex(data);
  const heads = objectParts({ site, repo, kind, hash, size: data.byteLength });
  await Promise.all(
    heads.map((h) =>
      f.nats.bus.publish(subjects.inbox(site, repo, kind, hash), data.subarray(h.part * h.partSize, Math.min(data.byteLength, (h.part + 1) * h.partSize)), {
        msgId: `${site}.${repo}.${kind}.${hash}.${h.part}${o.msgIdSuffix ?? ''}`,
        headers: { [OBJECT_HEADER]: encodePartHeader(h) },
      }),
    ),
  );
  return { hash, parts: heads.length };
}

export function randomObject(bytes: number): Uint8Array {
  return new Uint8Array(randomBytes(bytes));
}

/** Publishes an event as the agent of `site`. */
export async function publishEvent(f: Pick<Fixture, 'nats'>, site: string, event: 'heartbeat' | 'log' | 'snapshot' | 'status' | 'drill', message: unknown): Promise<void> {
  await f.nats.bus.publish(subjects.event(site, event), encode(message));
}

/** Everything on MV_CONTROL now, in order. */
export async function controlMessages(f: Pick<Fixture, 'nats'>): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  const t = await f.nats.bus.tail(streams.control.name, (m) => out.push(m));
  await t.caughtUp;
  await t.stop();
  return out;
}

export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function heartbeat(site: string, sentAt: number) {
  return {
    type: 'mv.heartbeat.v1',
    site,
    sentAt,
    agentVersion: '0.1.0',
    uptimeS: 12,
    repos: [{ id: REPO, path: '/mnt/backup1', snapshots: 1, lastSnapshotAt: sentAt - 1000 }],
    backlog: { objects: 0, bytes: 0 },
  };
}

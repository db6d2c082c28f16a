/**
 * Every NATS subject medvault uses: a documented pattern (what permissions and streams match) and
 * a builder (what code publishes to). Tokens are validated ids (see ids.ts), never free text.
 *
 * Four JetStream streams carry all of it; JetStream is the controller's system of record.
 *
 * | stream       | subjects              | written by          | retention                    |
 * |--------------|-----------------------|---------------------|------------------------------|
 * | MV_INBOX     | mv.v1.in.<site>.>     | that site's agent   | work queue: gone once ingested|
 * | MV_OFFSITE   | mv.v1.off.<site>.>    | controller only     | limits: the off-site copies  |
 * | MV_EVENTS    | mv.v1.ev.<site>.>     | that site's agent   | limits: heartbeats, logs, …  |
 * | MV_CONTROL   | mv.v1.ctl.<site>.>    | controller only     | limits: receipts and orders  |
 * | MV_AUDIT     | mv.v1.audit.controller| controller only     | limits, no delete/purge: the controller's audit chain |
 *
 * An agent's credentials MUST allow publishing only to `mv.v1.in.<own site>.>` and
 * `mv.v1.ev.<own site>.>` and reading only `mv.v1.ctl.<own site>.>` and `mv.v1.off.<own site>.>`.
 * The controller's deploy tooling generates exactly these permissions per site nkey
 * (controller/src/sites/nats-config.ts); an agent uses the inbox prefix `_INBOX.<site>`.
 */
import type { ObjectKind } from './ids.js';
import { HASH_RE, REPO_RE, SITE_RE } from './ids.js';
import { MedvaultError, codes } from './errors.js';

export const streams = {
  inbox: { name: 'MV_INBOX', subjects: ['mv.v1.in.>'] },
  offsite: { name: 'MV_OFFSITE', subjects: ['mv.v1.off.>'] },
  events: { name: 'MV_EVENTS', subjects: ['mv.v1.ev.>'] },
  control: { name: 'MV_CONTROL', subjects: ['mv.v1.ctl.>'] },
  audit: { name: 'MV_AUDIT', subjects: ['mv.v1.audit.>'] },
} as const;

/** Event types an agent publishes under `mv.v1.ev.<site>.<event>`. */
/**
 * `audit`: the agent's hash-chained audit entries (mv.audit.v1), message id
 * `<site>.ev.audit.<chain>.<seq>` (`<chain>`: the first 16 hex digits of the chain's first entry's hash);
 * `needs`: what each snapshot needs off site (mv.snapshot-needs.v1); `drill`: drill results (mv.drill-result.v1).
 */
export const eventTypes = ['heartbeat', 'log', 'snapshot', 'status', 'alert', 'audit', 'needs', 'drill'] as const;
export type EventType = (typeof eventTypes)[number];
/** Control types the controller publishes under `mv.v1.ctl.<site>.<control>`. */
/** receipt: mv.receipt.v1; order: mv.restore-order.v1; drill: mv.drill-order.v1; resend: mv.resend.v1; reconcile: mv.reconcile.v1; pruned: mv.pruned.v1. */
export const controlTypes = ['receipt', 'order', 'drill', 'resend', 'reconcile', 'pruned'] as const;
export type ControlType = (typeof controlTypes)[number];

function token(re: RegExp, value: string, what: string): string {
  if (!re.test(value)) throw new MedvaultError(codes.MESSAGE_INVALID, `invalid ${what} ${JSON.stringify(value)}`);
  return value;
}

export const subjects = {
  /**
   * Pattern `mv.v1.in.<site>.<repo>.<kind>.<hash>`: the parts of one repository object, sent by an
   * agent, in order, part 0 first (header `Mv-Object`, see messages.ts). Message id
   * `<site>.<repo>.<kind>.<hash>.<part>` makes a resend within the duplicate window a no-op; a resend
   * the controller asked for (mv.resend.v1) appends `.r<first 8 characters of the request id>`.
   */
  inboxPattern: (site = '*') => `mv.v1.in.${site === '*' ? '*' : token(SITE_RE, site, 'site')}.>`,
  inbox: (site: string, repo: string, kind: ObjectKind, hash: string) =>
    `mv.v1.in.${token(SITE_RE, site, 'site')}.${token(REPO_RE, repo, 'repository id')}.${kind}.${token(HASH_RE, hash, 'object hash')}`,
  /** Pattern `mv.v1.off.<site>.<repo>.<kind>.<hash>`: the verified off-site copy of an object, in parts. */
  offsitePattern: (site = '*') => `mv.v1.off.${site === '*' ? '*' : token(SITE_RE, site, 'site')}.>`,
  offsite: (site: string, repo: string, kind: ObjectKind, hash: string) =>
    `mv.v1.off.${token(SITE_RE, site, 'site')}.${token(REPO_RE, repo, 'repository id')}.${kind}.${token(HASH_RE, hash, 'object hash')}`,
  /** Pattern `mv.v1.ev.<site>.<event>`: what an agent reports. */
  eventPattern: (site = '*', event: EventType | '*' = '*') =>
    `mv.v1.ev.${site === '*' ? '*' : token(SITE_RE, site, 'site')}.${event}`,
  event: (site: string, event: EventType) => `mv.v1.ev.${token(SITE_RE, site, 'site')}.${event}`,
  /** Pattern `mv.v1.ctl.<site>.<control>`: what the controller tells one site (signed). */
  controlPattern: (site = '*', control: ControlType | '*' = '*') =>
    `mv.v1.ctl.${site === '*' ? '*' : token(SITE_RE, site, 'site')}.${control}`,
  control: (site: string, control: ControlType) => `mv.v1.ctl.${token(SITE_RE, site, 'site')}.${control}`,
  /** `mv.v1.audit.controller`: the controller's own audit chain (mv.audit.v1), one subject. */
  controllerAudit: () => 'mv.v1.audit.controller',
} as const;

/** The parts of an inbox or off-site subject, validated; undefined when it is not one. */
export function parseObjectSubject(subject: string):
  | { area: 'in' | 'off'; site: string; repo: string; kind: ObjectKind; hash: string }
  | undefined {
  const m = /^mv\.v1\.(in|off)\.([^.]+)\.([^.]+)\.(config|key|pack|index|snapshot)\.([^.]+)$/.exec(subject);
  if (!m || !SITE_RE.test(m[2]!) || !REPO_RE.test(m[3]!) || !HASH_RE.test(m[5]!)) return undefined;
  return { area: m[1] as 'in' | 'off', site: m[2]!, repo: m[3]!, kind: m[4] as ObjectKind, hash: m[5]! };
}

/** The site and event type of an event subject; undefined when it is not one. */
export function parseEventSubject(subject: string): { site: string; event: EventType } | undefined {
  const m = /^mv\.v1\.ev\.([^.]+)\.([^.]+)$/.exec(subject);
  if (!m || !SITE_RE.test(m[1]!) || !(eventTypes as readonly string[]).includes(m[2]!)) return undefined;
  return { site: m[1]!, event: m[2] as EventType };
}

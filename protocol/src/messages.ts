/**
 * One schema per message. Every message carries `type`, a versioned name (`mv.<name>.v<N>`); a
 * reader refuses types it does not know. Times are integer milliseconds since the Unix epoch (UTC).
 * Schemas are strict: an unknown member makes the message invalid, so a signed message means
 * exactly what its signer saw. The schemas double as JSON Schema (`z.toJSONSchema`).
 */
import { z } from 'zod';
import { HASH_RE, ORDER_RE, REPO_RE, SITE_RE, objectKinds } from './ids.js';

export const site = z.string().regex(SITE_RE, 'site id: lowercase letters, digits and -, at most 63');
export const repoId = z.string().regex(REPO_RE, 'repository id: 32 hex characters');
export const hash = z.string().regex(HASH_RE, 'hash: 64 lowercase hex characters');
export const orderId = z.string().regex(ORDER_RE, 'order id: a UUID v4');
export const objectKind = z.enum(objectKinds);
export const time = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
const text = (max: number) => z.string().max(max);
/** A snapshot tag's longest (the snapshot-needs message carries each). */
export const MAX_TAG_LENGTH = 100;
/** The most tags a snapshot carries (its file and the snapshot-needs message take no more). */
export const MAX_TAGS = 100;

/** An Ed25519 signature over the canonical encoding of the message without `sig`. */
export const signature = z.strictObject({
  alg: z.literal('ed25519'),
  /** Key id: first 16 hex characters of SHA-256 over the raw 32-byte public key. */
  kid: z.string().regex(/^[0-9a-f]{16}$/),
  /** base64url of the 64-byte signature. */
  value: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
});

/** Who asked for a job: the scheduler, a named person (via an order), or the agent itself. */
export const actor = z.strictObject({
  kind: z.enum(['scheduler', 'user', 'agent']),
  id: text(200),
});

export const jobKinds = ['full', 'incremental', 'continuous', 'restore', 'drill', 'check'] as const;

/**
 * mv.heartbeat.v1, agent → `mv.v1.ev.<site>.heartbeat`, every few seconds: the agent is alive and
 * this is what it holds.
 */
export const heartbeat = z.strictObject({
  type: z.literal('mv.heartbeat.v1'),
  site,
  sentAt: time,
  agentVersion: text(40),
  uptimeS: count,
  repos: z
    .array(
      z.strictObject({
        id: repoId,
        path: text(4096),
        snapshots: count,
        lastSnapshotAt: time.optional(),
      }),
    )
    .max(64),
  /**
   * Replication backlog: objects and bytes not yet receipted by the controller. Catch-up estimate
   * (optional): bytes of objects without a receipt now, the measured replication rate (bytes/s over
   * the last minute), the seconds to catch up at that rate, and the bandwidth limit in force.
   */
  backlog: z.strictObject({
    objects: count,
    bytes: count,
    oldestAt: time.optional(),
    toSendBytes: count.optional(),
    rateBps: count.optional(),
    etaS: count.optional(),
    limitBps: count.optional(),
  }),
  /** The head of the agent's audit chain: anchors the replicated copy (entries removed at its end). */
  audit: z.strictObject({ seq: z.number().int().positive(), hash }).optional(),
  /** Seconds between heartbeats: the controller calls the agent offline after three are missed. */
  intervalS: z.number().int().min(1).max(3600).optional(),
  /** Every configured backup disk: where it is mounted, its size and free bytes, SMART health where smartctl exists. */
  disks: z
    .array(
      z.strictObject({
        path: text(4096),
        ok: z.boolean(),
        error: text(2000).optional(),
        mount: text(4096).optional(),
        sizeBytes: count.optional(),
        freeBytes: count.optional(),
        /** 'unknown' when smartctl is missing or the device does not answer. */
        smart: z.enum(['passed', 'failed', 'unknown']).optional(),
      }),
    )
    .max(64)
    .optional(),
  /** Every record store: its last full, incremental and continuous run, RPO target, last job and watcher. */
  stores: z
    .array(
      z.strictObject({
        name: text(200),
        kind: text(20),
        continuous: z.boolean(),
        rpoS: count,
        lastFullAt: time.optional(),
        lastIncrementalAt: time.optional(),
        lastContinuousAt: time.optional(),
        lastSnapshotAt: time.optional(),
        lastJob: z
          .strictObject({ job: text(20), result: z.enum(['ok', 'partial', 'failed']), endedAt: time, error: text(2000).optional() })
          .optional(),
        watcher: z.strictObject({ state: text(40), reason: text(2000).optional(), since: time }).optional(),
        /** Oldest change seen by the watcher that no snapshot holds yet (the current RPO exposure). */
        pendingSince: time.optional(),
        /** The store's cron schedules (the compliance report's expected runs). */
        schedule: z.strictObject({ full: text(100), incremental: text(100), timezone: text(100).optional() }).optional(),
      }),
    )
    .max(64)
    .optional(),
});

/** mv.backup-log.v1, agent → `mv.v1.ev.<site>.log`: one finished job (SOP 5.1 backup log). */
export const backupLog = z.strictObject({
  type: z.literal('mv.backup-log.v1'),
  site,
  jobId: z.string().uuid(),
  job: z.enum(jobKinds),
  store: text(200),
  repo: repoId.optional(),
  actor,
  startedAt: time,
  endedAt: time,
  result: z.enum(['ok', 'partial', 'failed']),
  files: count,
  bytes: count,
  snapshot: hash.optional(),
  orderId: orderId.optional(),
  errors: z.array(z.strictObject({ code: text(64), message: text(2000), path: text(8192).optional() })).max(1000),
});

/** mv.snapshot.v1, agent → `mv.v1.ev.<site>.snapshot`: a snapshot was committed locally. */
export const snapshotEvent = z.strictObject({
  type: z.literal('mv.snapshot.v1'),
  site,
  repo: repoId,
  id: hash,
  store: text(200),
  job: z.enum(['full', 'incremental', 'continuous']),
  time,
  files: count,
  bytes: count,
  /** Every object this snapshot needs off site before it counts as off site. */
  needs: z.number().int().nonnegative(),
});

/**
 * mv.object.v1: the JSON in header `Mv-Object` of each part of a replicated object on
 * `mv.v1.in.<site>.<repo>.<kind>.<hash>`. The payload is the raw bytes of part `part`: every part
 * but the last holds exactly `partSize` bytes; `parts` = max(1, ceil(size / partSize)). The
 * object's SHA-256 MUST equal `hash`; the controller checks it before it keeps or receipts anything.
 */
export const objectPart = z.strictObject({
  type: z.literal('mv.object.v1'),
  site,
  repo: repoId,
  kind: objectKind,
  hash,
  size: count,
  partSize: z.number().int().min(1024).max(8 * 1024 * 1024),
  part: count,
  parts: z.number().int().positive(),
});

/**
 * mv.receipt.v1, controller → `mv.v1.ctl.<site>.receipt`, signed: the controller has stored the
 * object off site, read it back and found its SHA-256 equal to `hash`.
 */
export const receipt = z.strictObject({
  type: z.literal('mv.receipt.v1'),
  site,
  repo: repoId,
  kind: objectKind,
  hash,
  size: count,
  storedAt: time,
  sig: signature.optional(),
});

/** Where a restore reads from: the local disk, the off-site copy, or local when healthy. */
export const restoreSources = ['local', 'offsite', 'auto'] as const;

/**
 * mv.restore-order.v1, controller → `mv.v1.ctl.<site>.order`, signed. Valid only for `site`, only
 * once (`id`), and only from `issuedAt` to `expiresAt`. `paths` are '/'-separated paths inside the
 * snapshot ('' is everything); `target` is an absolute folder on the appliance that the restore
 * MUST NOT write outside of.
 */
export const restoreOrder = z.strictObject({
  type: z.literal('mv.restore-order.v1'),
  id: orderId,
  site,
  /** 'latest' (of `store`, if given) or a snapshot id (its hash). */
  snapshot: z.union([z.literal('latest'), hash]),
  store: text(200).optional(),
  paths: z.array(text(8192)).max(1000),
  target: z.string().min(2).max(4096).startsWith('/'),
  source: z.enum(restoreSources),
  /** 'new' refuses to overwrite existing files in the target; 'overwrite' replaces them. */
  mode: z.enum(['new', 'overwrite']),
  requestedBy: z.strictObject({ user: text(200), mfa: z.boolean() }),
  /** Four-eyes: the second person who approved an in-place overwrite, when the controller requires one. */
  approvedBy: z.strictObject({ user: text(200), mfa: z.boolean() }).optional(),
  issuedAt: time,
  expiresAt: time,
  nonce: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  sig: signature.optional(),
});

export const orderStates = ['accepted', 'refused', 'running', 'verifying', 'done', 'failed'] as const;

/** mv.order-status.v1, agent → `mv.v1.ev.<site>.status`: progress and outcome of one order. */
export const orderStatus = z.strictObject({
  type: z.literal('mv.order-status.v1'),
  orderId,
  site,
  state: z.enum(orderStates),
  at: time,
  reason: z.strictObject({ code: text(64), message: text(2000) }).optional(),
  progress: z
    .strictObject({ files: count, bytes: count, totalFiles: count, totalBytes: count })
    .optional(),
  result: z
    .strictObject({
      snapshot: hash,
      files: count,
      bytes: count,
      verified: count,
      failed: z.array(text(8192)).max(1000),
      /** Where the restore read from; an order with source 'auto' says which it used. */
      source: z.enum(['local', 'offsite']).optional(),
    })
    .optional(),
});

/**
 * mv.alert.v1, agent → `mv.v1.ev.<site>.alert`: something a person must know (SOP 5.5). `key`
 * identifies the condition (e.g. `disk:/mnt/backup1`, `watcher:records`), so repeated alerts for
 * the same cause update one open alert; `state: 'resolved'` closes it when the cause is gone.
 */
export const alert = z.strictObject({
  type: z.literal('mv.alert.v1'),
  site,
  code: text(64),
  severity: z.enum(['info', 'warning', 'critical']),
  key: text(300),
  state: z.enum(['open', 'resolved']),
  message: text(2000),
  store: text(200).optional(),
  snapshot: hash.optional(),
  at: time,
});

/** A repository object named by kind and hash. */
export const objectRef = z.strictObject({ kind: objectKind, hash });

/**
 * mv.resend.v1, controller → `mv.v1.ctl.<site>.resend`, signed: the controller's scrub found the
 * off-site copies of `objects` missing or damaged. The agent drops their receipts, raises an alert
 * naming them, and sends them again from its local repository with message ids suffixed
 * `.r<first 8 characters of id>` (so JetStream's duplicate window does not swallow the resend).
 */
export const resendRequest = z.strictObject({
  type: z.literal('mv.resend.v1'),
  id: orderId,
  site,
  repo: repoId,
  objects: z.array(objectRef).min(1).max(1000),
  reason: text(2000),
  at: time,
  sig: signature.optional(),
});

/**
 * mv.reconcile.v1, controller → `mv.v1.ctl.<site>.reconcile`, signed: compare the local repository
 * with what MV_OFFSITE holds for this site (the agent lists it itself, headers only, with its own
 * credentials) and send whatever is missing there, receipt or not. The controller sends it at
 * start, after a scrub found damage, and daily.
 */
export const reconcileRequest = z.strictObject({
  type: z.literal('mv.reconcile.v1'),
  id: orderId,
  site,
  reason: text(2000),
  at: time,
  sig: signature.optional(),
});

/**
 * Objects per mv.snapshot-needs.v1 part at the most: the schema refuses more, and the agent splits
 * its lists by it. A full part (about 205 kB) stays under decode's MAX_MESSAGE_BYTES.
 */
export const MAX_NEEDS_PER_PART = 2000;

/**
 * mv.snapshot-needs.v1, agent → `mv.v1.ev.<site>.needs` (message id `<site>.needs.<snapshot>.<part>`),
 * sent with every new snapshot: every pack and index file the snapshot needs, in parts of at most
 * MAX_NEEDS_PER_PART objects. The controller keeps the first complete list per snapshot and ignores
 * later ones (a compromised appliance cannot shrink what an old snapshot needs); off-site pruning
 * deletes only objects that no retained snapshot needs. Keys and config are never pruned.
 */
export const snapshotNeeds = z.strictObject({
  type: z.literal('mv.snapshot-needs.v1'),
  site,
  repo: repoId,
  snapshot: hash,
  time,
  store: text(200),
  tags: z.array(text(MAX_TAG_LENGTH)).max(MAX_TAGS),
  part: count,
  parts: z.number().int().positive(),
  objects: z.array(objectRef).max(MAX_NEEDS_PER_PART),
});

/**
 * mv.pruned.v1, controller → `mv.v1.ctl.<site>.pruned`, signed: off-site retention deleted these
 * objects' copies (no retained or held snapshot needed them). Published before the purge, so the
 * controller's scrub never takes them for missing, and the agent's reconcile never sends them again;
 * a later receipt for the same object (it was needed again and resent) supersedes it. Members as
 * in mv.resend.v1.
 */
export const prunedRecord = resendRequest.extend({ type: z.literal('mv.pruned.v1') });

export const drillSources = ['local', 'offsite'] as const;

/**
 * mv.drill-order.v1, controller → `mv.v1.ctl.<site>.drill`, signed, single-use and expiring like a
 * restore order (checkOrder with this type): restore snapshot `snapshot` of `store` into scratch
 * space once per source, verify every file (database stores: into a scratch database, then check
 * it), measure RTO and RPO, report mv.drill-result.v1 and clean up. Touches no record store.
 */
export const drillOrder = z.strictObject({
  type: z.literal('mv.drill-order.v1'),
  id: orderId,
  site,
  store: text(200),
  snapshot: z.union([z.literal('latest'), hash]),
  /** Share of the snapshot's files restored: 1 is all of it, 0.1 a random 10 % sample (at least one file). */
  sample: z.number().gt(0).max(1),
  sources: z.array(z.enum(drillSources)).min(1).max(2),
  requestedBy: actor,
  issuedAt: time,
  expiresAt: time,
  nonce: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  sig: signature.optional(),
});

/** One restore of a drill: from one source, timed from start to the last verified byte. */
export const drillRun = z.strictObject({
  source: z.enum(drillSources),
  result: z.enum(['passed', 'failed']),
  startedAt: time,
  endedAt: time,
  /** Measured recovery time in seconds: restore plus verification (plus the scratch database load). */
  rtoS: z.number().nonnegative(),
  files: count,
  bytes: count,
  verified: count,
  failed: z.array(z.strictObject({ path: text(8192), reason: text(2000) })).max(1000),
  /** Database stores: the scratch database the dump was loaded into and what the check found. */
  database: z.strictObject({ name: text(200), tables: count, rows: count }).optional(),
  error: z.strictObject({ code: text(64), message: text(2000) }).optional(),
});

/**
 * mv.drill-result.v1, agent → `mv.v1.ev.<site>.drill`: what a drill did and found. `passed` only
 * when every run passed and both targets were met; the controller turns it into a signed report.
 */
export const drillResult = z.strictObject({
  type: z.literal('mv.drill-result.v1'),
  drillId: orderId,
  site,
  store: text(200),
  repo: repoId.optional(),
  snapshot: hash.optional(),
  snapshotTime: time.optional(),
  requestedBy: actor,
  sample: z.number().gt(0).max(1),
  startedAt: time,
  endedAt: time,
  result: z.enum(['passed', 'failed']),
  /** Age in seconds of the newest snapshot of the store when the drill started. */
  rpoS: z.number().nonnegative().optional(),
  targets: z.strictObject({ rtoS: count, rpoS: count }),
  met: z.strictObject({ rto: z.boolean(), rpo: z.boolean() }),
  runs: z.array(drillRun).max(4),
  error: z.strictObject({ code: text(64), message: text(2000) }).optional(),
});

/** Who did something recorded in an audit trail. */
export const auditActor = z.strictObject({
  kind: z.enum(['user', 'agent', 'controller', 'scheduler', 'system']),
  id: text(200),
});

/**
 * mv.audit.v1: one entry of a hash-chained audit trail (see audit.ts). The controller's own chain
 * is on `mv.v1.audit.controller` (stream MV_AUDIT); an agent's chain is replicated as events on
 * `mv.v1.ev.<site>.audit` (stream MV_EVENTS), its entries naming `site`. `hash` is the SHA-256 of
 * the canonical encoding of every other member; `prev` is the hash of the entry before (64 zeros
 * for the first), and `seq` counts from 1 without gaps, so an edited, inserted or removed entry breaks
 * the chain.
 */
export const auditEntry = z.strictObject({
  type: z.literal('mv.audit.v1'),
  site: site.optional(),
  seq: z.number().int().positive(),
  at: time,
  actor: auditActor,
  /** What happened: dotted lowercase words, e.g. `login`, `order.issue`, `order.approve`, `break-glass`. */
  action: z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*){0,3}$/).max(64),
  /** What it happened to: a user, site, order id, snapshot, key id, file… */
  object: text(1000),
  result: z.enum(['ok', 'refused', 'failed']),
  detail: z.record(z.string().max(64), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()])).optional(),
  prev: hash,
  hash,
});

export type Heartbeat = z.infer<typeof heartbeat>;
export type Alert = z.infer<typeof alert>;
export type BackupLog = z.infer<typeof backupLog>;
export type SnapshotEvent = z.infer<typeof snapshotEvent>;
export type ObjectPart = z.infer<typeof objectPart>;
export type Receipt = z.infer<typeof receipt>;
export type RestoreOrder = z.infer<typeof restoreOrder>;
export type OrderStatus = z.infer<typeof orderStatus>;
export type Signature = z.infer<typeof signature>;
export type AuditEntry = z.infer<typeof auditEntry>;
export type AuditActor = z.infer<typeof auditActor>;
export type ObjectRef = z.infer<typeof objectRef>;
export type ResendRequest = z.infer<typeof resendRequest>;
export type ReconcileRequest = z.infer<typeof reconcileRequest>;
export type SnapshotNeeds = z.infer<typeof snapshotNeeds>;
export type PrunedRecord = z.infer<typeof prunedRecord>;
export type DrillOrder = z.infer<typeof drillOrder>;
export type DrillRun = z.infer<typeof drillRun>;
export type DrillResult = z.infer<typeof drillResult>;
export type DrillSource = (typeof drillSources)[number];
export type JobKind = (typeof jobKinds)[number];
export type OrderState = (typeof orderStates)[number];

/** Every message type by its versioned name: the table `decode` dispatches on. */
export const messageTypes = {
  'mv.heartbeat.v1': heartbeat,
  'mv.backup-log.v1': backupLog,
  'mv.snapshot.v1': snapshotEvent,
  'mv.object.v1': objectPart,
  'mv.receipt.v1': receipt,
  'mv.restore-order.v1': restoreOrder,
  'mv.order-status.v1': orderStatus,
  'mv.alert.v1': alert,
  'mv.audit.v1': auditEntry,
  'mv.resend.v1': resendRequest,
  'mv.reconcile.v1': reconcileRequest,
  'mv.snapshot-needs.v1': snapshotNeeds,
  'mv.pruned.v1': prunedRecord,
  'mv.drill-order.v1': drillOrder,
  'mv.drill-result.v1': drillResult,
} as const;

export type MessageType = keyof typeof messageTypes;
export type MessageOf<T extends MessageType> = z.infer<(typeof messageTypes)[T]>;
export type Message = { [T in MessageType]: MessageOf<T> }[MessageType];

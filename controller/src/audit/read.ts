/**
 * Reading audit chains back for `audit verify` and `audit export`: the controller's own chain from
 * MV_AUDIT, or a site's replicated chain from MV_SITE_AUDIT (the server's undeletable copy of the
 * `mv.v1.ev.<site>.audit` events, anchored by the audit head in that site's last heartbeat), or a
 * JSON export an auditor was given.
 *
 * A site's copy may hold several chains: a replaced appliance starts a new one at seq 1 (each chain
 * has its own message ids, so none is taken for a resend). `verify` splits a site's entries where
 * one starts a chain (seq 1, prev GENESIS), verifies each chain by itself, in order, and reports
 * each new chain as an event, not a problem; gaps, edits and insertions within a chain are still
 * problems. The heartbeat's head anchors the last chain.
 */
import { readFileSync } from 'node:fs';
import {
  GENESIS, MedvaultError, codes, decode, streams, subjects, verifyChain, type AuditEntry, type ChainHead, type ChainReport,
} from '@medvault/protocol';
import { SITE_AUDIT_STREAM, type Bus } from '../bus.js';

export const MAX_AUDIT_ENTRIES = 10_000_000;

export interface Chain {
  /** 'controller' or the site id. */
  chain: string;
  /** Raw values in stream order (not yet validated: verifyChain does that). */
  values: unknown[];
  /** A head known from elsewhere that the chain must reach. */
  anchor?: ChainHead;
}

function parse(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return { unparsable: Buffer.from(data).toString('base64').slice(0, 200) };
  }
}

export async function readChain(bus: Pick<Bus, 'readSubject' | 'lastOnSubject'>, site?: string): Promise<Chain> {
  if (site === undefined) {
    const msgs = await bus.readSubject(streams.audit.name, subjects.controllerAudit(), MAX_AUDIT_ENTRIES);
    return { chain: 'controller', values: msgs.map((m) => parse(m.data)) };
  }
  // The heartbeat first: entries it names were published before it.
  let anchor: ChainHead | undefined;
  const hb = await bus.lastOnSubject(streams.events.name, subjects.event(site, 'heartbeat'));
  if (hb) {
    try {
      anchor = decode(hb.data, 'mv.heartbeat.v1').audit;
    } catch {
      anchor = undefined;
    }
  }
  // The server copies events into MV_SITE_AUDIT asynchronously: give a lagging copy a moment to
  // reach the anchor before calling the chain truncated.
  let msgs = await bus.readSubject(SITE_AUDIT_STREAM, subjects.event(site, 'audit'), MAX_AUDIT_ENTRIES);
  for (let i = 0; anchor && msgs.length < anchor.seq && i < 8; i++) {
    await new Promise((r) => setTimeout(r, 250));
    msgs = await bus.readSubject(SITE_AUDIT_STREAM, subjects.event(site, 'audit'), MAX_AUDIT_ENTRIES);
  }
  return { chain: site, values: msgs.map((m) => parse(m.data)), ...(anchor ? { anchor } : {}) };
}

/** A JSON export (`audit export --format json`): `{chain, entries: [...]}`. */
export function readExport(file: string): Chain {
  let v: { chain?: unknown; entries?: unknown };
  try {
    v = JSON.parse(readFileSync(file, 'utf8')) as typeof v;
  } catch (cause) {
    throw new MedvaultError(codes.CONFIG_INVALID, `${file}: not a JSON audit export`, { cause });
  }
  if (!Array.isArray(v.entries) || typeof v.chain !== 'string') throw new MedvaultError(codes.CONFIG_INVALID, `${file}: not a JSON audit export ({chain, entries})`);
  return { chain: v.chain, values: v.entries };
}

export interface ChainStart {
  /** Position of the chain's first entry in the values. */
  index: number;
  at: number;
  message: string;
}

export type VerifyReport = ChainReport & { chain: string; starts: ChainStart[] };

export function verify(c: Chain, head?: ChainHead): VerifyReport {
  const anchor = head ?? c.anchor;
  const site = c.chain === 'controller' ? null : c.chain;
  // Where a site's chains start: the controller's chain never restarts (MV_AUDIT is its record).
  const cuts = [0];
  if (site !== null) c.values.forEach((v, i) => i > 0 && startsChain(v) && cuts.push(i));
  const report: VerifyReport = { chain: c.chain, ok: true, entries: c.values.length, problems: [], starts: [] };
  cuts.forEach((from, n) => {
    const last = n === cuts.length - 1;
    const part = verifyChain(c.values.slice(from, cuts[n + 1]), { site, ...(last && anchor ? { head: anchor } : {}) });
    report.problems.push(...part.problems.map((p) => ({ ...p, index: p.index + from })));
    if (last && part.head) report.head = part.head;
    const e = c.values[from] as AuditEntry;
    if (n > 0) report.starts.push({ index: from, at: e.at, message: `new chain started at ${new Date(e.at).toISOString()}, first entry ${e.action} ${e.object} by ${e.actor.kind}:${e.actor.id} (${part.entries} entries)` });
  });
  report.ok = report.problems.length === 0;
  return report;
}

function startsChain(v: unknown): boolean {
  const e = v as Partial<AuditEntry> | null;
  if (e?.seq !== 1 || e.prev !== GENESIS) return false;
  try {
    decode(JSON.stringify(v), 'mv.audit.v1');
    return true;
  } catch {
    return false; // a garbled entry is reported by verifyChain, within the chain it is in
  }
}

/** The entries that validate, for export (an export of a broken chain says so: verify it). */
export function validEntries(c: Chain): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const v of c.values) {
    try {
      out.push(decode(JSON.stringify(v), 'mv.audit.v1'));
    } catch {
      // reported by verify
    }
  }
  return out;
}

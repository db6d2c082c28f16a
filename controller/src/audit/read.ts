/**
 * Reading audit chains back for `audit verify` and `audit export`: the controller's own chain from
 * MV_AUDIT, or a site's replicated chain from MV_SITE_AUDIT (the server's undeletable copy of the
 * `mv.v1.ev.<site>.audit` events, anchored by the audit head in that site's last heartbeat), or a
 * JSON export an auditor was given.
 */
import { readFileSync } from 'node:fs';
import {
  MedvaultError, codes, decode, streams, subjects, verifyChain, type AuditEntry, type ChainHead, type ChainReport,
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

export function verify(c: Chain, head?: ChainHead): ChainReport & { chain: string } {
  const anchor = head ?? c.anchor;
  return { chain: c.chain, ...verifyChain(c.values, { site: c.chain === 'controller' ? null : c.chain, ...(anchor ? { head: anchor } : {}) }) };
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

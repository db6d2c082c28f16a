/**
 * `medvault-agent audit verify [--head SEQ:HASH]` and `audit export --format csv|json`: the
 * appliance's own audit chain (`<state_dir>/audit.jsonl`). verify exits 5 when the chain is broken
 * (an entry edited, inserted or removed); `--head` checks against a head known from elsewhere,
 * e.g. the one `medvault-controller audit verify --site` prints for the replicated copy.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AUDIT_CSV_HEADER, MedvaultError, auditCsvRow, codes, formatCount, validate, type AuditEntry, type ChainHead } from '@medvault/protocol';
import type { CliContext } from '../cli/context.js';
import { readEntries, verifyFile } from './audit-log.js';

const parseHead = (v: string): ChainHead => {
  const m = /^([0-9]+):([0-9a-f]{64})$/.exec(v);
  if (!m) throw new MedvaultError(codes.CONFIG_INVALID, `--head ${v}: SEQ:HASH`);
  return { seq: Number(m[1]), hash: m[2]! };
};

export function register(program: Command, ctx: CliContext): void {
  const audit = program.command('audit').description("the appliance's hash-chained audit trail");
  audit
    .command('verify')
    .description('verify the local audit chain; exit 5 if an entry was edited, inserted or removed')
    .option('--head <seq:hash>', 'a head known from the replicated copy: the chain must still contain it', parseHead)
    .action((o: { head?: ChainHead }) => {
      const cfg = ctx.config();
      const file = join(cfg.state_dir, 'audit.jsonl');
      const r = verifyFile(file, cfg.site, o.head);
      if (!r.ok) ctx.status = 'damaged';
      const lines = [`${file}: ${formatCount(r.entries, 'entry', 'entries')}, ${r.ok ? 'chain intact' : `BROKEN: ${formatCount(r.problems.length, 'problem')}`}${r.head ? `; head ${r.head.seq}:${r.head.hash}` : ''}`, ...r.problems.slice(0, 50).map((p) => `  ${p.kind}: ${p.message}`)];
      ctx.print(lines.join('\n'), { command: 'audit verify', file, ...r });
    });
  audit
    .command('export')
    .description('export the local audit chain as CSV or JSON')
    .option('--format <format>', 'csv or json', 'json')
    .option('--out <file>', 'write here instead of stdout')
    .action((o: { format: string; out?: string }) => {
      if (o.format !== 'csv' && o.format !== 'json') throw new MedvaultError(codes.CONFIG_INVALID, `--format ${o.format}: csv or json`);
      const cfg = ctx.config();
      const values = readEntries(join(cfg.state_dir, 'audit.jsonl'));
      const valid: AuditEntry[] = [];
      for (const v of values) {
        try {
          valid.push(validate(v, 'mv.audit.v1'));
        } catch {
          // a garbled line: `audit verify` names it
        }
      }
      const text = o.format === 'json'
        ? `${JSON.stringify({ chain: cfg.site, exportedAt: Date.now(), entries: values }, null, 1)}\n`
        : `${[AUDIT_CSV_HEADER, ...valid.map(auditCsvRow)].join('\r\n')}\r\n`;
      if (o.out) {
        writeFileSync(o.out, text, { mode: 0o600 });
        ctx.print(`${values.length} entries written to ${o.out}`, { command: 'audit export', out: o.out, entries: values.length });
      } else process.stdout.write(text);
    });
}

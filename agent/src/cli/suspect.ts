/**
 * `medvault-agent suspect list` and `suspect clear <store>`: snapshots that looked like ransomware,
 * and a person's decision that the store is clean again (pruning of it resumes).
 */
import type { Command } from 'commander';
import { MedvaultError, codes } from '@medvault/protocol';
import { clearSuspect, suspendedStores } from '../jobs/suspicion.js';
import type { CliContext } from './context.js';
import { Alerts } from '../daemon/alerts.js';
import { Spool } from '../replicate/spool.js';

export function register(program: Command, ctx: CliContext): void {
  const suspect = program.command('suspect').description('snapshots that looked like ransomware; pruning of their store is suspended');
  suspect
    .command('list')
    .description('stores with a suspect snapshot not yet cleared')
    .action(() => {
      const open = [...suspendedStores(ctx.config().state_dir).values()];
      const lines = open.map((e) => `${e.store}: snapshot ${e.snapshot?.slice(0, 12)} suspect since ${new Date(e.at).toISOString()} (${e.reasons?.join('; ')}); last good ${e.lastGood}`);
      ctx.print(lines.join('\n') || 'no suspect snapshots', { command: 'suspect list', suspect: open });
    });
  suspect
    .command('clear <store>')
    .description('record that the store was checked and is clean; pruning resumes')
    .requiredOption('--by <person>', 'who checked it (recorded)')
    .action((store: string, opts: { by: string }) => {
      const cfg = ctx.config();
      if (!suspendedStores(cfg.state_dir).has(store)) throw new MedvaultError(codes.NOT_FOUND, `store ${store} has no suspect snapshot`);
      clearSuspect(cfg.state_dir, store, opts.by, Date.now());
      // the alert the suspicion opened (inspectSnapshot) closes on the controller with it
      const spool = new Spool(cfg.state_dir, cfg.site);
      new Alerts({ site: cfg.site, send: (a) => spool.add('alert', a), now: Date.now }).resolve(`ransomware:${store}`, `store ${store}: checked and cleared by ${opts.by}; pruning resumes`, { code: 'MV_ALERT_RANSOMWARE', severity: 'critical', store });
      ctx.print(`store ${store} cleared by ${opts.by}; pruning resumes`, { command: 'suspect clear', store, by: opts.by });
    });
}

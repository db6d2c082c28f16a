/** `medvault-agent status`: what the running daemon reports — stores, watchers, disks, alerts, backlog. */
import type { Command } from 'commander';
import { MedvaultError, codes } from '@medvault/protocol';
import { alive, readStatus } from '../daemon/status.js';
import { formatBytes, formatCount, type CliContext } from './context.js';

const ago = (t: number | undefined, now: number) => (t === undefined ? 'never' : `${Math.round((now - t) / 1000)} s ago`);

export function register(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show what the running agent daemon reports: stores, watchers, disks, alerts, backlog')
    .action(async () => {
      const cfg = ctx.config();
      const s = readStatus(cfg.state_dir);
      const now = Date.now();
      if (!s) throw new MedvaultError(codes.NOT_FOUND, `${cfg.state_dir}: no status: the agent daemon (medvault-agent run) has not run yet`);
      const running = alive(s.pid) && now - s.updatedAt < 30_000;
      if (!running) ctx.status = 'failed';
      const lines = [`agent ${s.site}: ${running ? `running (pid ${s.pid}, up ${ago(s.startedAt, now).replace(' ago', '')})` : `NOT RUNNING (last report ${ago(s.updatedAt, now)})`}`];
      for (const st of s.stores) {
        const w = st.watcher ? `, watcher ${st.watcher.state}${st.watcher.reason ? ` (${st.watcher.reason})` : ''}` : '';
        lines.push(`store ${st.name} (${st.type}${st.continuous ? `, continuous, RPO ${st.rpoS} s` : ''}${w}): last full ${ago(st.lastFull, now)}, last incremental ${ago(st.lastIncremental, now)}${st.lastJob ? `, last job ${st.lastJob.job} ${st.lastJob.result}${st.lastJob.error ? `: ${st.lastJob.error}` : ''}` : ''}`);
      }
      for (const d of s.disks) lines.push(`disk ${d.path}: ${d.ok ? `ok (repository ${d.repo})` : `NOT USABLE: ${d.error}`}`);
      if (s.running) lines.push(`running: ${s.running.job} of ${s.running.store} for ${ago(s.running.since, now).replace(' ago', '')}`);
      for (const q of s.queued) lines.push(`queued: ${q.job} of ${q.store} (${q.reason})`);
      for (const a of s.alerts) lines.push(`ALERT ${a.severity}: ${a.message}`);
      if (s.link) lines.push(`NATS link (${s.link.servers.join(',')}): ${s.link.connected ? `up for ${ago(s.link.since, now).replace(' ago', '')}` : `DOWN for ${ago(s.link.since, now).replace(' ago', '')}: backups go on locally, replication waits`}`);
      lines.push(`off-site backlog: ${formatCount(s.backlog.objects, 'object')}, ${formatBytes(s.backlog.bytes)}`);
      // `running`: whether the daemon runs; the job under way (the status file's `running`) is `job`
      const { running: job, ...rest } = s;
      ctx.print(lines.join('\n'), { command: 'status', ...rest, running, ...(job ? { job } : {}) });
    });
}

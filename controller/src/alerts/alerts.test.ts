/**
 * Alerts open once, update, escalate, resolve by themselves, can be acknowledged, survive a
 * restart (KV), and reach a local webhook and a local SMTP listener written here.
 */
import { createServer as createHttp } from 'node:http';
import { createServer as createNet, type AddressInfo, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKv } from '../kv-memory.js';
import { createLog } from '../log.js';
import { assessSite, type Finding, type SiteFacts } from '../health/assess.js';
import { AlertBook, MESSAGE_UPDATE_MS, type AlertChange } from './alert-book.js';
import { AlertStore } from './alert-store.js';
import { Notifier, alertsConfigSchema } from './notifier.js';
import { sendMail } from './smtp.js';

const f = (key: string, severity: Finding['severity'] = 'warning', message = `${key} happened`): Finding => ({ key, code: `MV_ALERT_${key.toUpperCase()}`, severity, message, source: 'controller' });
let n = 0;
const ids = () => `id-${++n}`;

/**
 * The server side of an SMTP dialogue for the listeners below, enough of RFC 5321 for them: feed
 * the returned function what arrives; `command` gets each command line, `message` each message
 * (the lines after a DATA command up to the lone '.').
 */
function smtpDialogue(command: (line: string) => void, message: (data: string) => void): (chunk: string) => void {
  let buf = '';
  let inData = false;
  return (chunk) => {
    buf += chunk;
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n');
        if (end < 0) return;
        const data = buf.slice(0, end);
        buf = buf.slice(end + 5);
        inData = false;
        message(data);
        continue;
      }
      const i = buf.indexOf('\r\n');
      if (i < 0) return;
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      inData = /^DATA$/i.test(line);
      command(line);
    }
  };
}

describe('AlertBook', () => {
  it('opens once, updates, escalates, resolves by itself, and a person can acknowledge', () => {
    const book = new AlertBook(ids);
    const seen: AlertChange['kind'][] = [];
    book.onChange((c) => seen.push(c.kind));
    expect(book.reconcile('a', [f('disk')], 1000).map((c) => c.kind)).toEqual(['open']);
    expect(book.reconcile('a', [f('disk')], 2000)).toEqual([]);
    // A message-only change waits, a severity change does not.
    expect(book.reconcile('a', [f('disk', 'warning', 'other words')], 3000)).toEqual([]);
    expect(book.reconcile('a', [f('disk', 'warning', 'other words')], 1000 + MESSAGE_UPDATE_MS).map((c) => c.kind)).toEqual(['update']);
    const [esc] = book.reconcile('a', [f('disk', 'critical')], 70_000);
    expect(esc!.kind).toBe('escalate');
    const id = esc!.alert.id;
    expect(book.acknowledge(id, 'tess', 71_000).ack).toEqual({ by: 'tess', at: 71_000 });
    expect(book.list({ state: 'open' })).toHaveLength(1);
    // Another site's findings leave this one alone; its cause going away resolves it.
    expect(book.reconcile('b', [], 72_000)).toEqual([]);
    const [res] = book.reconcile('a', [], 80_000);
    expect(res).toMatchObject({ kind: 'resolve', alert: { id, state: 'resolved', resolvedAt: 80_000, ack: { by: 'tess' } } });
    expect(() => book.acknowledge(id, 'tess', 81_000)).toThrow(/already resolved/);
    expect(() => book.acknowledge('nope', 'tess', 81_000)).toThrow(/unknown/);
    // The same cause again is a new alert.
    const [again] = book.reconcile('a', [f('disk')], 90_000);
    expect(again!.alert.id).not.toBe(id);
    expect(seen).toEqual(['open', 'update', 'escalate', 'ack', 'resolve', 'open']);
  });

  it('follows the health assessment: agent offline opens, heartbeat back resolves', () => {
    const book = new AlertBook(ids);
    const facts: SiteFacts = { site: 'c', firstSeenAt: 0, heartbeat: { type: 'mv.heartbeat.v1', site: 'c', sentAt: 1000, agentVersion: '1', uptimeS: 1, repos: [], backlog: { objects: 0, bytes: 0 } }, heartbeatAt: 1000, agentAlerts: [], log: [], snapshots: [], verifications: [] };
    expect(book.reconcile('c', assessSite(facts, 60_000).reasons, 60_000).map((c) => c.alert.code)).toEqual(['MV_ALERT_AGENT_OFFLINE']);
    expect(book.reconcile('c', assessSite({ ...facts, heartbeat: { ...facts.heartbeat!, sentAt: 61_000 }, heartbeatAt: 61_000 }, 62_000).reasons, 62_000).map((c) => c.kind)).toEqual(['resolve']);
  });

  it('keeps open alerts and acknowledgements across a restart (KV)', async () => {
    const kv = new MemoryKv();
    const log = createLog('silent');
    const store = new AlertStore(kv, log);
    const book = new AlertBook(ids);
    book.onChange((c) => store.save(c.alert));
    const [o] = book.reconcile('a', [f('clock'), f('disk')], 1);
    book.acknowledge(o!.alert.id, 'tess', 2);
    book.reconcile('a', [f('clock')], 3);
    await store.idle();
    const again = new AlertBook(ids);
    again.load(await new AlertStore(kv, log).loadAll());
    expect(again.list({ state: 'open' }).map((a) => [a.key, a.ack?.by])).toEqual([['clock', 'tess']]);
    expect(again.list().map((a) => a.state).sort()).toEqual(['open', 'resolved']);
    expect(again.reconcile('a', [f('clock')], 4)).toEqual([]);
  });
});

describe('Notifier: webhooks and e-mail', () => {
  const hooks: Array<{ url: string; body: any }> = [];
  const mails: Array<{ from: string; to: string[]; data: string }> = [];
  let httpPort = 0;
  let smtpPort = 0;
  let failNext = 0;
  const http = createHttp((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
        return;
      }
      hooks.push({ url: req.url!, body: JSON.parse(b) });
      res.writeHead(204).end();
    });
  });
  /** A tiny SMTP listener: accepts one message per connection. */
  const smtp = createNet((s) => {
    s.setEncoding('utf8');
    const cur = { from: '', to: [] as string[], data: '' };
    s.write('220 test ESMTP\r\n');
    s.on('data', smtpDialogue((line) => {
      if (/^EHLO /i.test(line)) s.write('250-test\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n');
      else if (/^MAIL FROM:<(.*)>$/i.test(line)) (cur.from = /<(.*)>/.exec(line)![1]!), s.write('250 ok\r\n');
      else if (/^RCPT TO:<(.*)>$/i.test(line)) (cur.to.push(/<(.*)>/.exec(line)![1]!), s.write('250 ok\r\n'));
      else if (/^DATA$/i.test(line)) s.write('354 go on\r\n');
      else if (/^QUIT$/i.test(line)) s.end('221 bye\r\n');
      else s.write('502 no\r\n');
    }, (data) => {
      mails.push({ ...cur, data });
      s.write('250 queued\r\n');
    }));
  });

  beforeAll(async () => {
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    httpPort = (http.address() as AddressInfo).port;
    smtpPort = (smtp.address() as AddressInfo).port;
  });
  afterAll(() => {
    http.close();
    smtp.close();
  });

  it('posts opened/escalated/resolved to every webhook and e-mails them, retrying a failing webhook', async () => {
    const config = alertsConfigSchema.parse({
      webhooks: [`http://127.0.0.1:${httpPort}/hook-a`, `http://127.0.0.1:${httpPort}/hook-b`],
      dashboard_url: 'https://controller.example:8443',
      smtp: { host: '127.0.0.1', port: smtpPort, from: 'medvault@clinic.example', to: ['it@clinic.example', 'lead@clinic.example'] },
    });
    const notifier = new Notifier({ config, log: createLog('silent'), delaysMs: [10, 10] });
    const book = new AlertBook(ids);
    book.onChange((c) => notifier.notify(c));
    failNext = 1;
    book.reconcile('clinic-a', [f('offsite', 'warning', 'the off-site copy is 2 h behind')], 1000);
    book.reconcile('clinic-a', [f('offsite', 'critical', 'the off-site copy is 2 days behind')], 2000);
    const [, , ack] = [0, 0, book.acknowledge(book.list()[0]!.id, 'tess', 2500)];
    expect(ack.ack?.by).toBe('tess');
    book.reconcile('clinic-a', [], 3000);
    await notifier.idle();
    expect(notifier.stats).toEqual({ sent: 9, failed: 0, queued: 0 });
    expect(hooks.filter((h) => h.url === '/hook-a').map((h) => [h.body.event, h.body.alert.severity])).toEqual([['opened', 'warning'], ['escalated', 'critical'], ['resolved', 'critical']]);
    expect(hooks.filter((h) => h.url === '/hook-b')).toHaveLength(3);
    expect(mails).toHaveLength(3);
    expect(mails[0]).toMatchObject({ from: 'medvault@clinic.example', to: ['it@clinic.example', 'lead@clinic.example'] });
    expect(mails[0]!.data).toContain('Subject: [medvault] WARNING clinic-a: the off-site copy is 2 h behind');
    expect(mails[2]!.data).toContain('Subject: [medvault] RESOLVED clinic-a');
    expect(mails[2]!.data).toContain('https://controller.example:8443/#/site/clinic-a');
  });

  it('gives up after its retries and says so; min_severity critical skips warnings', async () => {
    const log = createLog('silent');
    const lost = new Notifier({ config: alertsConfigSchema.parse({ webhooks: ['http://127.0.0.1:1/nothing'] }), log, delaysMs: [5] });
    lost.notify({ kind: 'open', alert: new AlertBook(ids).reconcile('x', [f('disk')], 1)[0]!.alert });
    await lost.idle();
    expect(lost.stats).toMatchObject({ sent: 0, failed: 1 });
    const calls: string[] = [];
    const quiet = new Notifier({ config: alertsConfigSchema.parse({ webhooks: ['http://h/'], min_severity: 'critical' }), log, send: { webhook: async (_u, b) => void calls.push(JSON.parse(b).alert.severity) } });
    const b = new AlertBook(ids);
    b.onChange((c) => quiet.notify(c));
    b.reconcile('x', [f('disk', 'warning'), f('clock', 'critical')], 1);
    await quiet.idle();
    expect(calls).toEqual(['critical']);
  });

  it('dot-stuffs the body and refuses bad addresses', async () => {
    await sendMail({ host: '127.0.0.1', port: smtpPort }, { from: 'a@b.example', to: ['c@d.example'], subject: 's', text: 'line\n.hidden\nend' });
    expect(mails.at(-1)!.data).toContain('\r\n..hidden\r\nend');
    await expect(sendMail({ host: '127.0.0.1', port: smtpPort }, { from: 'a@b.example', to: ['not an address'], subject: 's', text: '' })).rejects.toThrow(/not an e-mail address/);
    await expect(sendMail({ host: '127.0.0.1', port: 1 }, { from: 'a@b.example', to: ['c@d.example'], subject: 's', text: '' })).rejects.toThrow(/smtp: greeting/);
  });
});

describe('SMTP with STARTTLS and AUTH PLAIN', () => {
  it('upgrades to TLS (pinned CA), authenticates, then sends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-smtp-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'));
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const seen: string[] = [];
    const server = createNet((raw) => {
      let secure = false;
      let s: Socket | TLSSocket = raw;
      const onData = (d: Buffer) => dialogue(d.toString('utf8'));
      const dialogue = smtpDialogue((line) => {
        seen.push(`${secure ? 'tls' : 'plain'}: ${line.split(' ')[0]}`);
        if (/^EHLO/.test(line)) s.write(secure ? '250-test\r\n250 AUTH PLAIN\r\n' : '250-test\r\n250 STARTTLS\r\n');
        else if (line === 'STARTTLS') {
          raw.removeListener('data', onData);
          raw.write('220 go ahead\r\n', () => {
            const t = new TLSSocket(raw, { isServer: true, key, cert });
            t.on('data', onData);
            s = t;
            secure = true;
          });
        } else if (/^AUTH PLAIN /.test(line)) s.write(Buffer.from(line.slice(11), 'base64').toString() === '\0alerts\0s3cret' ? '235 ok\r\n' : '535 no\r\n');
        else if (line === 'DATA') s.write('354 go\r\n');
        else if (line === 'QUIT') s.end('221 bye\r\n');
        else s.write('250 ok\r\n');
      }, () => s.write('250 queued\r\n'));
      raw.on('data', onData);
      raw.write('220 test ESMTP\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      await sendMail({ host: '127.0.0.1', port, starttls: true, ca: cert, user: 'alerts', password: 's3cret' }, { from: 'a@b.example', to: ['c@d.example'], subject: 's', text: 'hello' });
      expect(seen.slice(0, 7)).toEqual(['plain: EHLO', 'plain: STARTTLS', 'tls: EHLO', 'tls: AUTH', 'tls: MAIL', 'tls: RCPT', 'tls: DATA']);
      await expect(sendMail({ host: '127.0.0.1', port, starttls: true, ca: cert, user: 'alerts', password: 'wrong' }, { from: 'a@b.example', to: ['c@d.example'], subject: 's', text: '' })).rejects.toThrow(/AUTH: server said 535/);
      // Without the pinned CA the certificate is refused.
      await expect(sendMail({ host: '127.0.0.1', port, starttls: true }, { from: 'a@b.example', to: ['c@d.example'], subject: 's', text: '' })).rejects.toThrow();
    } finally {
      server.close();
    }
  });
});

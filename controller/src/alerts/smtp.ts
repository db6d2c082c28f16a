/**
 * A minimal SMTP client (RFC 5321) for alert e-mail: EHLO, optional STARTTLS and AUTH PLAIN,
 * MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT. One message per connection; rejects with
 * MV_ERR_TRANSPORT_FAILED naming the reply that failed. No dependency: nodemailer's current
 * major needs more than this and its transport options are a surface we do not need.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { hostname } from 'node:os';
import { MedvaultError, codes } from '@medvault/protocol';

export interface SmtpOptions {
  host: string;
  port: number;
  starttls?: boolean;
  user?: string;
  password?: string;
  /** CA for STARTTLS (PEM); the system's by default. */
  ca?: string;
  timeoutMs?: number;
}

export interface Mail {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

const ADDRESS = /^[^\s<>@]+@[^\s<>@]+$/;

function fail(message: string, cause?: unknown): MedvaultError {
  return new MedvaultError(codes.TRANSPORT_FAILED, `smtp: ${message}`, { cause, retryable: true });
}

/** Reads complete SMTP replies (`250-…` continuation lines, then `250 …`). */
class Replies {
  private buf = '';
  private waiting: ((r: { code: number; text: string }) => void) | undefined;
  private readonly ready: { code: number; text: string }[] = [];
  private error: Error | undefined;
  private onError: ((e: Error) => void) | undefined;
  constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }
  attach(socket: Socket | TLSSocket): void {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.feed(d));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }
  private fail(e: Error): void {
    this.error ??= e;
    this.onError?.(e);
  }
  private feed(d: string): void {
    this.buf += d;
    let lines: string[] = [];
    for (;;) {
      const i = this.buf.indexOf('\n');
      if (i < 0) break;
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      lines.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        const r = { code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join('\n') };
        lines = [];
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          w(r);
        } else this.ready.push(r);
      }
    }
    if (lines.length) this.buf = `${lines.join('\n')}\n${this.buf}`;
  }
  next(): Promise<{ code: number; text: string }> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.onError = reject;
    });
  }
}

/** Sends one message; resolves when the server accepted it for delivery (250 after DATA). */
export async function sendMail(o: SmtpOptions, m: Mail): Promise<void> {
  for (const a of [m.from, ...m.to]) if (!ADDRESS.test(a)) throw new MedvaultError(codes.CONFIG_INVALID, `smtp: not an e-mail address: ${JSON.stringify(a)}`);
  if (m.to.length === 0) throw new MedvaultError(codes.CONFIG_INVALID, 'smtp: no recipients');
  let socket: Socket | TLSSocket = netConnect({ host: o.host, port: o.port });
  socket.setTimeout(o.timeoutMs ?? 15_000, () => socket.destroy(new Error('timed out')));
  const replies = new Replies(socket);
  const expect = async (what: string, ok: number[]) => {
    let r;
    try {
      r = await replies.next();
    } catch (cause) {
      throw fail(`${what}: ${(cause as Error).message}`, cause);
    }
    if (!ok.includes(r.code)) throw fail(`${what}: server said ${r.code} ${r.text}`.slice(0, 500));
    return r;
  };
  const cmd = async (line: string, what: string, ok: number[]) => {
    socket.write(`${line}\r\n`);
    return expect(what, ok);
  };
  try {
    await expect('greeting', [220]);
    const me = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'medvault';
    let ehlo = await cmd(`EHLO ${me}`, 'EHLO', [250]);
    if (o.starttls) {
      if (!/^STARTTLS$/im.test(ehlo.text)) throw fail('the server does not offer STARTTLS');
      await cmd('STARTTLS', 'STARTTLS', [220]);
      const plain = socket;
      plain.removeAllListeners('data');
      plain.removeAllListeners('close');
      plain.removeAllListeners('error');
      socket = tlsConnect({ socket: plain, ...(isIP(o.host) ? {} : { servername: o.host }), ...(o.ca ? { ca: o.ca } : {}) });
      await new Promise<void>((resolve, reject) => (socket as TLSSocket).once('secureConnect', resolve).once('error', reject));
      replies.attach(socket);
      ehlo = await cmd(`EHLO ${me}`, 'EHLO after STARTTLS', [250]);
    }
    if (o.user !== undefined) {
      const token = Buffer.from(`\0${o.user}\0${o.password ?? ''}`).toString('base64');
      await cmd(`AUTH PLAIN ${token}`, 'AUTH', [235]);
    }
    await cmd(`MAIL FROM:<${m.from}>`, 'MAIL FROM', [250]);
    for (const to of m.to) await cmd(`RCPT TO:<${to}>`, `RCPT TO ${to}`, [250, 251]);
    await cmd('DATA', 'DATA', [354]);
    const headers = [
      `From: <${m.from}>`, `To: ${m.to.map((t) => `<${t}>`).join(', ')}`, `Subject: ${m.subject.replace(/[\r\n]+/g, ' ').slice(0, 200)}`,
      `Date: ${new Date().toUTCString()}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit',
    ];
    const body = m.text.replace(/\r?\n/g, '\r\n').split('\r\n').map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n');
    socket.write(`${headers.join('\r\n')}\r\n\r\n${body}\r\n.\r\n`);
    await expect('message', [250]);
    socket.write('QUIT\r\n');
  } finally {
    socket.end();
  }
}

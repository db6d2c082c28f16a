/**
 * The dashboard's live channel: one WebSocket per open page. The page authenticates with its
 * first message `{type:"auth", token}` (browsers cannot set headers on a WebSocket); the hub then
 * sends `{type:"hello"}` and `{type:"fleet", sites}` and afterwards every change as it happens:
 * `{type:"site", site}`, `{type:"alert", change, alert}`, `{type:"order", order}`,
 * `{type:"drill", drill}` (a drill issued or its result in, as GET /api/v1/drills/:id shows it).
 *
 * The socket is closed (code 4401) when the session expires. Watching is not activity: the page
 * reconnects only if its user did something meanwhile, so automatic logoff still works.
 * A client that reads too slowly (over 4 MiB buffered) is dropped; it reconnects and resyncs.
 */
import type { Session } from '../auth/sessions.js';

export interface LiveSocket {
  readyState: number;
  bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  on(event: 'message', fn: (data: Buffer | string) => void): void;
  on(event: 'close', fn: () => void): void;
}

const OPEN = 1;
const MAX_BUFFERED = 4 * 1024 * 1024;

export class LiveHub {
  private readonly clients = new Set<{ socket: LiveSocket; timer: NodeJS.Timeout }>();

  constructor(private readonly d: { clock: () => number; snapshot: () => unknown; authTimeoutMs?: number }) {}

  get size(): number {
    return this.clients.size;
  }

  accept(socket: LiveSocket, session: (token: string) => (Session & { expiresAt: number }) | undefined): void {
    const t = setTimeout(() => socket.close(4401, 'send {type:"auth", token} first'), this.d.authTimeoutMs ?? 10_000);
    let client: { socket: LiveSocket; timer: NodeJS.Timeout } | undefined;
    socket.on('message', (data) => {
      if (client) return;
      let token: unknown;
      try {
        token = (JSON.parse(String(data)) as { type?: string; token?: unknown }).token;
      } catch {
        token = undefined;
      }
      const s = typeof token === 'string' && /^[A-Za-z0-9_-]{43}$/.test(token) ? session(token) : undefined;
      clearTimeout(t);
      if (!s) {
        socket.close(4401, 'session expired or logged off: log in again');
        return;
      }
      const timer = setTimeout(() => socket.close(4401, 'session expired'), Math.max(1000, s.expiresAt - this.d.clock()));
      client = { socket, timer };
      this.clients.add(client);
      socket.send(JSON.stringify({ type: 'hello', user: s.user, role: s.role, expiresAt: s.expiresAt }));
      socket.send(JSON.stringify({ type: 'fleet', ...(this.d.snapshot() as object) }));
    });
    socket.on('close', () => {
      clearTimeout(t);
      if (client) {
        clearTimeout(client.timer);
        this.clients.delete(client);
      }
    });
  }

  /** Sends `msg` to every authenticated page. */
  broadcast(msg: unknown): void {
    if (this.clients.size === 0) return;
    const text = JSON.stringify(msg);
    for (const c of this.clients) {
      if (c.socket.readyState !== OPEN) continue;
      if (c.socket.bufferedAmount > MAX_BUFFERED) {
        c.socket.close(4408, 'too slow');
        continue;
      }
      c.socket.send(text);
    }
  }

  close(): void {
    for (const c of this.clients) {
      clearTimeout(c.timer);
      c.socket.close(1001, 'controller stopping');
    }
    this.clients.clear();
  }
}

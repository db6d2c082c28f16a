/**
 * systemd's notification protocol (sd_notify(3)) for the controller's `Type=notify` unit: READY=1
 * once streams, projections, ingest and HTTP are up; WATCHDOG=1 only while every probe passes
 * (ingest consuming, the HTTP API answering on its own socket). No-op without $NOTIFY_SOCKET.
 */
import fsx from '@medvault/fsx';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

export interface Probe {
  name: string;
  /** Resolves true when healthy; a rejection or false withholds the watchdog. */
  check(): Promise<boolean>;
}

export interface ServiceWatchdog {
  ready(status: string): void;
  stopping(): void;
}

/** Starts notifying per $NOTIFY_SOCKET / $WATCHDOG_USEC / $WATCHDOG_PID; returns no-ops without them. */
export function serviceWatchdog(probes: Probe[], log: (msg: string, fields: Record<string, unknown>) => void, env: NodeJS.ProcessEnv = process.env): ServiceWatchdog {
  const socket = env.NOTIFY_SOCKET;
  const send = (fields: Record<string, string | number>) => {
    if (!socket) return;
    try {
      fsx.notify(socket, Object.entries(fields).map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`).join('\n'));
    } catch {
      // the service manager went away: nothing to do
    }
  };
  const usec = Number(env.WATCHDOG_USEC);
  const ours = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const periodMs = socket && ours && usec > 0 ? Math.floor(usec / 1000) : undefined;
  let timer: NodeJS.Timeout | undefined;
  let unhealthy = '';
  const round = async () => {
    const failed: string[] = [];
    for (const p of probes) {
      const ok = await Promise.race([p.check().catch(() => false), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
      if (!ok) failed.push(p.name);
    }
    if (failed.length === 0) {
      send(unhealthy ? { WATCHDOG: 1, STATUS: 'running' } : { WATCHDOG: 1 });
      unhealthy = '';
    } else {
      const status = `unhealthy: ${failed.join(', ')}`;
      send({ STATUS: status });
      if (status !== unhealthy) log('watchdog withheld', { failed });
      unhealthy = status;
    }
  };
  return {
    ready(status) {
      send({ READY: 1, STATUS: status, MAINPID: process.pid });
      if (periodMs === undefined) return;
      let busy = false;
      timer = setInterval(() => {
        if (busy) return;
        busy = true;
        void round().finally(() => (busy = false));
      }, Math.max(100, Math.floor(periodMs / 2)));
      timer.unref();
      void round();
    },
    stopping() {
      clearInterval(timer);
      send({ STOPPING: 1, STATUS: 'stopping' });
    },
  };
}

/**
 * True when the controller's own API answers `GET /api/v1/health` with 200 within `timeoutMs`.
 * Our own socket: with HTTPS the certificate is not checked (it may come from the private CA).
 */
export function httpAlive(base: string, timeoutMs = 4000): Promise<boolean> {
  return new Promise((resolve) => {
    const url = new URL('/api/v1/health', base);
    const req = (url.protocol === 'https:' ? httpsGet : httpGet)(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

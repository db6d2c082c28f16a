/** The controller's logger: pino JSON lines on stdout (journald keeps them). */
import { pino, type Logger } from 'pino';

export type Log = Pick<Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export function createLog(level = process.env.MV_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { svc: 'medvault-controller' } });
}

/** A logger that drops everything, for tests. */
export function silentLog(): Logger {
  return pino({ level: 'silent' });
}

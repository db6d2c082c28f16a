/**
 * Where `medvault login` keeps its session: $MEDVAULT_SESSION, else ~/.config/medvault/session.json,
 * written with mode 0600 (the token is as good as the login until it expires).
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const sessionSchema = z.object({ url: z.string().url(), token: z.string().regex(/^[A-Za-z0-9_-]{43}$/), user: z.string().optional(), expiresAt: z.number().optional() });
export type SavedSession = z.infer<typeof sessionSchema>;

export function sessionPath(env = process.env): string {
  return env.MEDVAULT_SESSION ?? join(homedir(), '.config', 'medvault', 'session.json');
}

export function saveSession(s: SavedSession, file = sessionPath()): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify(s)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The saved session, or undefined when there is none or it is unreadable. */
export function loadSession(file = sessionPath()): SavedSession | undefined {
  try {
    const p = sessionSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return p.success ? p.data : undefined;
  } catch {
    return undefined;
  }
}

export function removeSession(file = sessionPath()): void {
  rmSync(file, { force: true });
}

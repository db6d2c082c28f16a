/**
 * sources/: record stores that are not folders. A database store is dumped consistently
 * (`pg_dump --format=custom`, `mysqldump --single-transaction`) and streamed into the repository;
 * the dump is checked — exit code, the format's header, its completeness marker or table of
 * contents — before the snapshot is committed. Restoring loads it into a named target database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { MedvaultError, codes } from '@medvault/protocol';
import type { DatabaseStoreConfig } from '../config.js';

export interface Command {
  cmd: string;
  args: string[];
  env: Record<string, string>;
}

/** Connection arguments and environment (the password from its file, never on the command line). */
function split(s: DatabaseStoreConfig): { args: string[]; env: Record<string, string> } {
  const password = s.password_file ? readFileSync(s.password_file, 'utf8').trim() : undefined;
  const pg = s.type === 'postgres';
  const args = [
    ...(s.host ? ['-h', s.host] : []),
    ...(s.port ? [pg ? '-p' : '-P', String(s.port)] : []),
    ...(s.user ? [pg ? '-U' : '-u', s.user] : []),
    ...(pg ? ['--no-password'] : []),
  ];
  return { args, env: password ? { [pg ? 'PGPASSWORD' : 'MYSQL_PWD']: password } : {} };
}

/** The dump command for a store (pure apart from reading the password file). */
export function dumpCommand(s: DatabaseStoreConfig): Command {
  const { args, env } = split(s);
  return s.type === 'postgres'
    ? { cmd: 'pg_dump', args: ['--format=custom', ...args, s.database], env }
    : { cmd: 'mysqldump', args: ['--single-transaction', '--quick', '--routines', '--triggers', '--events', '--hex-blob', '--default-character-set=utf8mb4', ...args, s.database], env };
}

/** The snapshot's file name for a store's dump. */
export function dumpName(s: DatabaseStoreConfig): string {
  return s.type === 'postgres' ? `${s.database}.pgdump` : `${s.database}.mysql.sql`;
}

export function dumpSource(s: DatabaseStoreConfig): string {
  return `${s.type}://${s.host ?? 'localhost'}${s.port ? `:${s.port}` : ''}/${s.database}`;
}

function run(c: Command, stdin: 'ignore' | 'pipe'): ChildProcess {
  return spawn(c.cmd, c.args, { env: { ...process.env, ...c.env }, stdio: [stdin, 'pipe', 'pipe'] });
}

function exited(child: ChildProcess, what: string): Promise<{ stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new MedvaultError(codes.STORAGE_FAILED, `${what}: cannot run: ${err.message}`, { cause: err })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ stderr });
      else reject(new MedvaultError(codes.STORAGE_FAILED, `${what} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`));
    });
  });
}

/**
 * Starts the dump. `stream` yields its bytes; `verify()` (call after the stream ended) resolves only
 * when the dump is complete: the tool exited 0 and the dump has its format's header and
 * completeness marker (MySQL) or a table of contents that `pg_restore --list` can read (PostgreSQL).
 */
export function dumpDatabase(s: DatabaseStoreConfig): { stream: AsyncIterable<Buffer>; verify: () => Promise<void> } {
  const c = dumpCommand(s);
  const what = `store ${s.name}: ${c.cmd} ${s.database}`;
  const child = run(c, 'ignore');
  const done = exited(child, what);
  done.catch(() => {});
  const out = new PassThrough();
  let head = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  let toc: Promise<{ listing: string }> | undefined;
  if (s.type === 'postgres') {
    const lister = spawn('pg_restore', ['--list'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let listing = '';
    lister.stdout.on('data', (d) => (listing += d));
    const listed = exited(lister, `store ${s.name}: pg_restore --list (table of contents)`).then(() => ({ listing }));
    listed.catch(() => {});
    toc = listed;
    lister.stdin.on('error', () => {});
    child.stdout!.pipe(lister.stdin);
  }
  child.stdout!.on('data', (d: Buffer) => {
    if (head.length < 256) head = Buffer.concat([head, d]).subarray(0, 256);
    tail = Buffer.concat([tail, d]).subarray(-256);
  });
  child.stdout!.pipe(out);
  return {
    stream: out,
    async verify() {
      await done;
      if (s.type === 'postgres') {
        if (!head.subarray(0, 5).equals(Buffer.from('PGDMP'))) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: output is not a pg_dump custom-format archive`);
        const { listing } = await toc!;
        if (!/^; Archive created at/m.test(listing) || !/^;\s+TOC Entries: \d+/m.test(listing)) {
          throw new MedvaultError(codes.DATA_CORRUPT, `${what}: the dump's table of contents is unreadable (truncated dump?)`);
        }
      } else {
        if (!/^(\/\*M!999999\\- enable the sandbox mode \*\/ ?\n)?-- (MySQL|MariaDB) dump/.test(head.toString('latin1'))) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: output is not a mysqldump`);
        if (!/-- Dump completed/.test(tail.toString('latin1'))) throw new MedvaultError(codes.DATA_CORRUPT, `${what}: the dump has no completion marker (truncated)`);
      }
    },
  };
}

/**
 * Creates database `target` (refusing one that exists) and loads the dump from `dump` into it;
 * `onCreated` runs once the database is this call's own (before that, nothing is to be dropped).
 */
export async function restoreDatabase(s: DatabaseStoreConfig, target: string, dump: AsyncIterable<Buffer>, onCreated?: () => Promise<void>): Promise<void> {
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(target)) throw new MedvaultError(codes.CONFIG_INVALID, `target database ${JSON.stringify(target)} is not a valid name`);
  const { args, env } = split(s);
  const what = `restore of store ${s.name} into database ${target}`;
  const create: Command = s.type === 'postgres'
    ? { cmd: 'createdb', args: [...args, target], env }
    : { cmd: 'mysql', args: [...args, '-e', `CREATE DATABASE \`${target}\``], env };
  await exited(run(create, 'ignore'), `${what}: creating the database (an existing one is never used)`);
  await onCreated?.();
  const load: Command = s.type === 'postgres'
    ? { cmd: 'pg_restore', args: [...args, '--no-owner', '--exit-on-error', '--single-transaction', '-d', target], env }
    : { cmd: 'mysql', args: [...args, '--default-character-set=utf8mb4', target], env };
  const child = run(load, 'pipe');
  const done = exited(child, `${what}: ${load.cmd}`);
  child.stdin!.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    Readable.from(dump).on('error', reject).pipe(child.stdin!).on('finish', resolve).on('error', reject);
  }).catch(async (err) => {
    child.kill();
    await done.catch(() => {});
    throw err;
  });
  await done;
}

/** Runs `sql` in database `db` on the store's server; resolves with its rows, tab-separated, one per line. */
export async function queryDatabase(s: DatabaseStoreConfig, db: string, sql: string): Promise<string[]> {
  const { args, env } = split(s);
  const c: Command = s.type === 'postgres'
    ? { cmd: 'psql', args: [...args, '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql], env }
    : { cmd: 'mysql', args: [...args, '-N', '-B', db, '-e', sql], env };
  const child = run(c, 'ignore');
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await exited(child, `store ${s.name}: ${c.cmd} on database ${db}`);
  return out.split('\n').filter((l) => l !== '');
}

/** Every base table of database `db` with its exact row count (the check after a restore). */
export async function countRows(s: DatabaseStoreConfig, db: string): Promise<{ table: string; rows: number }[]> {
  const list = s.type === 'postgres'
    ? `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`
    : `SELECT CONCAT('\`', REPLACE(table_name, '\`', '\`\`'), '\`') FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1`;
  const tables = await queryDatabase(s, db, list);
  if (tables.length === 0) return [];
  const counts = await queryDatabase(s, db, tables.map((t, i) => `SELECT ${i}, COUNT(*) FROM ${t}`).join(' UNION ALL '));
  const rows = new Map(counts.map((l) => l.split('\t').map(Number) as [number, number]));
  return tables.map((table, i) => ({ table, rows: rows.get(i) ?? 0 }));
}

/** Drops database `db` if it exists (scratch databases of drills). */
export async function dropDatabase(s: DatabaseStoreConfig, db: string): Promise<void> {
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(db)) throw new MedvaultError(codes.CONFIG_INVALID, `database ${JSON.stringify(db)} is not a valid name`);
  const { args, env } = split(s);
  const c: Command = s.type === 'postgres'
    ? { cmd: 'dropdb', args: [...args, '--if-exists', db], env }
    : { cmd: 'mysql', args: [...args, '-e', `DROP DATABASE IF EXISTS \`${db}\``], env };
  await exited(run(c, 'ignore'), `store ${s.name}: dropping database ${db}`);
}

/**
 * Database stores against the real MariaDB and PostgreSQL servers (`.ci/run` starts them): the
 * OpenEMR dump and a PostgreSQL database of our own are backed up, dropped, restored into a named
 * database, and every table's row count and checksum match. Failed and truncated dumps are never
 * recorded as backups. MEDVAULT_SKIP_DB=1 skips this file on a machine without the servers.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseStoreConfig } from '../config.js';
import { testRepo, tempDir } from '../repo/testing.js';
import { backupStoreTo } from '../jobs/backup-job.js';
import { snapshotFileStream } from '../backup/stream-archiver.js';
import { dumpName, restoreDatabase } from './database.js';

const SQL = new URL('../../../../shared/data/records/sql/', import.meta.url).pathname;
const skip = process.env.MEDVAULT_SKIP_DB === '1';
const suffix = `${process.pid}_${Date.now() % 100000}`;
const schedule = { full: '0 2 * * 0', incremental: '0 2 * * *' };
const actor = { kind: 'scheduler' as const, id: 'test' };

const mysql = (sql: string, db?: string) =>
  execFileSync('mysql', ['-h', '127.0.0.1', '-u', 'root', '-N', '-B', ...(db ? [db] : []), '-e', sql], { encoding: 'utf8', maxBuffer: 64 << 20 });
const psql = (sql: string, db = 'postgres') =>
  execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', db, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' });

/** Every table's row count and checksum in a MariaDB database (two queries for all tables). */
function mysqlFingerprint(db: string): Record<string, string> {
  const tables = mysql(`SELECT table_name FROM information_schema.tables WHERE table_schema='${db}' AND table_type='BASE TABLE' ORDER BY 1`).trim().split('\n').filter(Boolean);
  const counts = mysql(tables.map((t) => `SELECT '${t}', COUNT(*) FROM \`${t}\``).join(' UNION ALL '), db).trim().split('\n');
  const sums = mysql(`CHECKSUM TABLE ${tables.map((t) => `\`${t}\``).join(', ')} EXTENDED`, db).trim().split('\n');
  const out: Record<string, string> = {};
  for (const line of counts) {
    const [t, n] = line.split('\t');
    out[t!] = `${n}`;
  }
  for (const line of sums) {
    const [t, sum] = line.split('\t');
    const name = t!.slice(db.length + 1);
    out[name] = `${out[name]}:${sum}`;
  }
  return out;
}

function pgFingerprint(db: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of psql(`SELECT tablename FROM pg_tables WHERE schemaname='public' ORDER BY 1`, db).trim().split('\n').filter(Boolean)) {
    out[t] = psql(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM "${t}" x`, db).trim();
  }
  return out;
}

describe.skipIf(skip)('database stores', () => {
  const created: string[] = [];
  afterAll(() => {
    for (const db of created) {
      try {
        if (db.startsWith('pg:')) psql(`DROP DATABASE IF EXISTS "${db.slice(3)}"`);
        else mysql(`DROP DATABASE IF EXISTS \`${db}\``);
      } catch {
        /* already gone */
      }
    }
  });

  it('MariaDB: the OpenEMR dump backs up, and restores after a drop with every row count and checksum equal', async () => {
    const db = `mv_openemr_${suffix}`;
    created.push(db);
    mysql(`CREATE DATABASE \`${db}\``);
    for (const f of ['openemr_database.sql', 'openemr_example_patient_users.sql', 'openemr_example_patient_data.sql']) {
      if (existsSync(join(SQL, f))) execFileSync('sh', ['-c', `mysql -h 127.0.0.1 -u root ${db} < '${join(SQL, f)}'`]);
      else if (f === 'openemr_database.sql') mysql('CREATE TABLE patient_data (id INT PRIMARY KEY, fname TEXT, lname TEXT, photo BLOB); INSERT INTO patient_data VALUES (1,"Amara","Okafor",x"00ff10"),(2,"Johan","Lindqvist",NULL)', db);
    }
    const before = mysqlFingerprint(db);
    expect(Object.keys(before).length).toBeGreaterThan(0);
    const t = await testRepo();
    const store: DatabaseStoreConfig = { name: 'ehr', type: 'mysql', database: db, host: '127.0.0.1', user: 'root', schedule, rpo_s: 86400 };
    const r = await backupStoreTo(t.repo, store, { job: 'full', actor });
    expect(r.summary.bytes).toBeGreaterThan(1000);
    mysql(`DROP DATABASE \`${db}\``);
    await restoreDatabase(store, db, snapshotFileStream(t.repo, r.snapshot, dumpName(store)));
    expect(mysqlFingerprint(db)).toEqual(before);
    // An existing target is refused, not overwritten.
    await expect(restoreDatabase(store, db, snapshotFileStream(t.repo, r.snapshot, dumpName(store)))).rejects.toThrow(/creating the database/);
  }, 120_000);

  it('PostgreSQL: a database of ours backs up (custom format), and restores after a drop, tables equal', async () => {
    const db = `mv_clinic_${suffix}`;
    created.push(`pg:${db}`);
    psql(`CREATE DATABASE "${db}"`);
    psql(
      `CREATE TABLE patient (id serial PRIMARY KEY, name text NOT NULL, born date, photo bytea, data jsonb);
       CREATE TABLE observation (id bigserial PRIMARY KEY, patient int REFERENCES patient(id), code text, value numeric(8,2), at timestamptz);
       INSERT INTO patient (name, born, photo, data) SELECT 'Patient ' || g, date '1950-01-01' + g, decode(md5(g::text), 'hex'), jsonb_build_object('mrn', g, 'note', 'NFD café ' || g) FROM generate_series(1, 500) g;
       INSERT INTO observation (patient, code, value, at) SELECT 1 + g % 500, 'HR', 60 + g % 40, now() - g * interval '1 hour' FROM generate_series(1, 5000) g;
       CREATE VIEW heart AS SELECT patient, avg(value) FROM observation GROUP BY patient;`,
      db,
    );
    const before = pgFingerprint(db);
    const t = await testRepo();
    const store: DatabaseStoreConfig = { name: 'pg', type: 'postgres', database: db, host: '127.0.0.1', user: 'postgres', schedule, rpo_s: 86400 };
    const r = await backupStoreTo(t.repo, store, { job: 'full', actor });
    psql(`DROP DATABASE "${db}"`);
    await restoreDatabase(store, db, snapshotFileStream(t.repo, r.snapshot, dumpName(store)));
    expect(pgFingerprint(db)).toEqual(before);
    expect(psql('SELECT count(*) FROM heart', db).trim()).toBe('500');
    // Into another named database as well (a drill's scratch database).
    created.push(`pg:${db}_scratch`);
    await restoreDatabase(store, `${db}_scratch`, snapshotFileStream(t.repo, r.snapshot, dumpName(store)));
    expect(pgFingerprint(`${db}_scratch`)).toEqual(before);
  }, 120_000);

  it('never records a failed or truncated dump as a backup', async () => {
    const t = await testRepo();
    const missing: DatabaseStoreConfig = { name: 'ehr', type: 'mysql', database: `mv_missing_${suffix}`, host: '127.0.0.1', user: 'root', schedule, rpo_s: 86400 };
    await expect(backupStoreTo(t.repo, missing, { job: 'full', actor })).rejects.toThrow(/store ehr: mysqldump mv_missing_.* failed/);
    const pgMissing: DatabaseStoreConfig = { name: 'pg', type: 'postgres', database: `mv_missing_${suffix}`, host: '127.0.0.1', user: 'postgres', schedule, rpo_s: 86400 };
    await expect(backupStoreTo(t.repo, pgMissing, { job: 'full', actor })).rejects.toThrow(/store pg: pg_dump .* failed/);
    // A dump tool that stops half-way but exits 0 (a truncated dump): no completion marker → refused.
    const bin = join(await tempDir('mv-fakebin-'), 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'mysqldump'), '#!/bin/sh\nprintf -- "-- MariaDB dump 10.19\\nCREATE TABLE t (id int);\\nINSERT INTO t VALUES (1),"\n');
    chmodSync(join(bin, 'mysqldump'), 0o755);
    writeFileSync(join(bin, 'pg_dump'), '#!/bin/sh\nprintf "PGDMP\\001\\016\\000\\004\\010\\001\\001garbage"\n');
    chmodSync(join(bin, 'pg_dump'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      await expect(backupStoreTo(t.repo, { ...missing, database: 'anything' }, { job: 'full', actor })).rejects.toThrow(/no completion marker \(truncated\)/);
      await expect(backupStoreTo(t.repo, { ...pgMissing, database: 'anything' }, { job: 'full', actor })).rejects.toThrow(/table of contents|pg_restore --list/);
    } finally {
      process.env.PATH = path;
    }
    expect(await t.repo.snapshots()).toEqual([]);
  }, 60_000);
});

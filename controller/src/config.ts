/**
 * The controller's configuration (`/etc/medvault/controller.toml`, or `--config FILE`), validated
 * in full before anything runs; a mistake names the file, the key and what was expected.
 *
 *   state_dir = "/var/lib/medvault-controller"   # controller.key lives here
 *   [nats]
 *   servers = ["nats://127.0.0.1:4222"]
 *   creds = "/etc/medvault/controller.creds"     # optional (JWT creds), or:
 *   nkey_file = "controller.nk"                  # the controller's nkey seed (made by init)
 *   ca_file = "/etc/medvault/tls/ca.pem"         # private CA: TLS only
 *   replicas = 3                                 # JetStream replicas (1 single node, 3 on a cluster)
 *   [nats_server]                                # for `medvault-controller nats-config`
 *   host = "0.0.0.0"
 *   port = 4222
 *   store_dir = "/var/lib/nats"
 *   cert_file = "/etc/medvault/tls/server.pem"
 *   key_file = "/etc/medvault/tls/server.key"
 *   [orders]
 *   four_eyes_overwrite = false                  # in-place overwrites need a second technician
 *   [break_glass]
 *   enabled = true                               # emergency admin access, audited and alerted
 *   session_minutes = 30
 *   [http]
 *   host = "127.0.0.1"
 *   port = 8443                                  # 0 picks a free port
 *   cert_file = "/etc/medvault/tls/api.pem"      # optional: HTTPS (with key_file)
 *   key_file = "/etc/medvault/tls/api.key"
 *   [sessions]
 *   idle_timeout_s = 900                         # automatic logoff after 15 idle minutes
 *   max_age_s = 43200                            # and after 12 hours regardless
 *   [ingest]
 *   max_object_bytes = 68719476736               # 64 GiB; larger objects are refused (logged, no receipt)
 *   [drills]                                     # SOP 5.4: a drill per store on this schedule
 *   every = "quarterly"                          # or monthly, weekly, daily, "30d", "12h"
 *   sample = 1                                   # share of the files restored (0.1: a seeded 10 % sample)
 *   sources = ["local", "offsite"]               # restore once from each copy
 *   [alerts]                                     # where alerts go besides the dashboard
 *   webhooks = ["https://chat.example/hook"]     # POST {event, alert} as JSON
 *   min_severity = "warning"                     # or "critical"
 *   dashboard_url = "https://controller.example:8443"
 *   [alerts.smtp]
 *   host = "mail.example"
 *   port = 587
 *   starttls = true
 *   from = "medvault@clinic.example"
 *   to = ["it@clinic.example"]
 *   user = "medvault"                            # optional, with password_file
 *   password_file = "/etc/medvault/smtp.password"
 *   [incidents]                                  # SOP 5.5: who hears of a new incident (IT and management)
 *   notify = ["https://chat.example/it", "management@clinic.example"]   # webhooks; e-mail via [alerts.smtp]
 *   [offsite]                                    # the off-site copy's care (offsite/)
 *   scrub_interval = 86400                       # seconds between scrub passes (0: no periodic scrub)
 *   scrub_rate = 20971520                        # bytes read back per second at most
 *   reconcile_interval = 86400                   # seconds between reconcile requests to every site
 *   prune_interval = 86400                       # seconds between off-site prune runs (0: only by CLI)
 *   [offsite.retention]                          # what the off-site copy keeps, by receipt time
 *   keep_daily = 14                              # also keep_last, keep_hourly, keep_weekly, keep_monthly, keep_yearly
 *   keep_within = "30d"                          # of the newest snapshot; y m w d h
 *   min_age = "7d"                               # nothing received more recently is ever pruned
 *
 * Command-line flags (`--nats`, `--state-dir`, `--port`) override the file; without a file the
 * flags alone may configure a test or demo controller.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'smol-toml';
import { z } from 'zod';
import { alertsConfigSchema } from './alerts/notifier.js';
import { drillsConfigSchema } from './drills/drill-schedule.js';
import { incidentsConfigSchema } from './incidents/incidents.js';
import { offsiteConfigSchema } from './offsite/config.js';
import { MedvaultError, codes, formatIssue, readConfigText, schemaIssues, syntaxIssue, type ConfigIssue } from '@medvault/protocol';

export const DEFAULT_CONFIG_FILE = '/etc/medvault/controller.toml';

const natsUrl = z.string().regex(/^(nats|tls):\/\/[^\s]+$/, 'nats://host:port');

export const configSchema = z.strictObject({
  state_dir: z.string().min(1, 'a path'),
  nats: z
    .strictObject({
      servers: z.array(natsUrl).min(1),
      creds: z.string().min(1).optional(),
      nkey_file: z.string().min(1).optional(),
      ca_file: z.string().min(1).optional(),
      /** JetStream replicas of every medvault stream and bucket: 1 on a single server, 3 on a cluster. */
      replicas: z.literal([1, 3, 5]).default(1),
    })
    .default({ servers: ['nats://127.0.0.1:4222'], replicas: 1 }),
  nats_server: z
    .strictObject({
      host: z.string().min(1).default('0.0.0.0'),
      port: z.number().int().min(1).max(65535).default(4222),
      store_dir: z.string().min(1).default('/var/lib/nats'),
      cert_file: z.string().min(1).optional(),
      key_file: z.string().min(1).optional(),
    })
    .default({ host: '0.0.0.0', port: 4222, store_dir: '/var/lib/nats' }),
  orders: z.strictObject({ four_eyes_overwrite: z.boolean().default(false) }).default({ four_eyes_overwrite: false }),
  break_glass: z
    .strictObject({ enabled: z.boolean().default(true), session_minutes: z.number().int().min(5).max(240).default(30) })
    .default({ enabled: true, session_minutes: 30 }),
  http: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8443),
      /** HTTPS certificate and key (PEM); without them the API is plain HTTP (loopback or behind a TLS proxy). */
      cert_file: z.string().min(1).optional(),
      key_file: z.string().min(1).optional(),
    })
    .refine((h) => (h.cert_file === undefined) === (h.key_file === undefined), 'give both cert_file and key_file, or neither')
    .default({ host: '127.0.0.1', port: 8443 }),
  sessions: z
    .strictObject({
      idle_timeout_s: z.number().int().min(10).max(24 * 3600).default(900),
      max_age_s: z.number().int().min(60).max(7 * 24 * 3600).default(12 * 3600),
    })
    .default({ idle_timeout_s: 900, max_age_s: 12 * 3600 }),
  ingest: z
    .strictObject({
      max_object_bytes: z.number().int().min(1024).max(1024 ** 4).default(64 * 1024 ** 3), // streamed: memory does not grow with it
    })
    .default({ max_object_bytes: 64 * 1024 ** 3 }),
  alerts: alertsConfigSchema,
  /** Disaster-recovery drills: how often per store, what share of the files, from which copies. */
  drills: drillsConfigSchema,
  /** Who hears of a new incident: webhook URLs and e-mail addresses (SOP 5.5: IT and management). */
  incidents: incidentsConfigSchema,
  offsite: offsiteConfigSchema,
});

export type ControllerConfig = z.infer<typeof configSchema> & { file: string | undefined };

export interface ConfigOverrides {
  config?: string;
  nats?: string;
  stateDir?: string;
  port?: number;
}

/**
 * Reads the file named by `--config` (which MUST exist), else the default file if it exists, else
 * nothing; applies the overrides and validates the result.
 */
export function loadConfig(o: ConfigOverrides = {}): ControllerConfig {
  const { config, issues } = checkConfig(o);
  if (!config) throw new MedvaultError(codes.CONFIG_INVALID, issues.map(formatIssue).join('\n'));
  return config;
}

/**
 * Like loadConfig, but returns every mistake (file, line, key, what was expected) instead of
 * throwing at the first; `config` only when there are none (`medvault-controller config check`).
 */
export function checkConfig(o: ConfigOverrides = {}): { config?: ControllerConfig; issues: ConfigIssue[] } {
  const file = o.config ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  let raw: Record<string, unknown> = {};
  let text = '';
  if (file !== undefined) {
    const read = readConfigText(file);
    if ('issue' in read) return { issues: [read.issue] };
    text = read.text;
    try {
      raw = parse(text) as Record<string, unknown>;
    } catch (cause) {
      return { issues: [syntaxIssue(file, cause, text)] };
    }
  }
  if (o.stateDir !== undefined) raw.state_dir = o.stateDir;
  if (o.nats !== undefined) raw.nats = { ...(raw.nats as object | undefined), servers: o.nats.split(',') };
  if (o.port !== undefined) raw.http = { ...(raw.http as object | undefined), port: o.port };
  const where = file ?? 'command line';
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = schemaIssues(where, text, raw, configSchema, parsed.error);
    if (file === undefined) for (const i of issues) if (i.key === 'state_dir') i.message += ' (give --state-dir or --config)';
    return { issues };
  }
  const c = parsed.data;
  const base = file !== undefined ? dirname(file) : process.cwd();
  // `credential:NAME`: a systemd credential (LoadCredential=), else its source folder for admins.
  const credential = (p: string) => p.replace(/^credential:(?=[A-Za-z0-9_.-]+$)/, `${process.env.CREDENTIALS_DIRECTORY ?? process.env.MEDVAULT_CREDENTIALS_SOURCE ?? '/etc/medvault/credentials'}/`);
  const abs = (p: string) => (isAbsolute(credential(p)) ? credential(p) : resolve(base, p));
  const config: ControllerConfig = {
    ...c,
    file,
    state_dir: abs(c.state_dir),
    nats: {
      ...c.nats,
      ...(c.nats.creds !== undefined ? { creds: abs(c.nats.creds) } : {}),
      ...(c.nats.nkey_file !== undefined ? { nkey_file: abs(c.nats.nkey_file) } : {}),
      ...(c.nats.ca_file !== undefined ? { ca_file: abs(c.nats.ca_file) } : {}),
    },
    http: {
      ...c.http,
      ...(c.http.cert_file !== undefined ? { cert_file: abs(c.http.cert_file) } : {}),
      ...(c.http.key_file !== undefined ? { key_file: abs(c.http.key_file) } : {}),
    },
    nats_server: {
      ...c.nats_server,
      store_dir: abs(c.nats_server.store_dir),
      ...(c.nats_server.cert_file !== undefined ? { cert_file: abs(c.nats_server.cert_file) } : {}),
      ...(c.nats_server.key_file !== undefined ? { key_file: abs(c.nats_server.key_file) } : {}),
    },
  };
  return { config, issues: [] };
}

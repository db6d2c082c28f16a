/**
 * The site registry: one file per enrolled site in `<state_dir>/sites/<site>.json` holding only
 * public material (the site's nkey public key, when and by whom it was enrolled). It is what
 * `nats-config` turns into nats-server permissions. Seeds never stay on the controller: the site's
 * seed goes into the bundle the appliance installs, and nowhere else.
 *
 * The controller's own nkey seed is `<state_dir>/controller.nk` (0600), made by `init`.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser, fromSeed } from '@nats-io/nkeys';
import { z } from 'zod';
import { MedvaultError, SITE_RE, codes, readNkeySeed } from '@medvault/protocol';

const recordSchema = z.strictObject({
  v: z.literal(1),
  site: z.string().regex(SITE_RE),
  nkey: z.string().regex(/^U[A-Z2-7]{55}$/),
  enrolledAt: z.number().int(),
  enrolledBy: z.string().max(200),
});
export type SiteRecord = z.infer<typeof recordSchema>;

export function controllerNkeyFile(stateDir: string): string {
  return join(stateDir, 'controller.nk');
}

/** Where the controller's nkey seed comes from, for the error when its file is not one. */
export const CONTROLLER_SEED_HINT = "the controller's nkey seed is made by medvault-controller init (<state_dir>/controller.nk, mode 0600)";

/** The controller's nkey seed in `file`: MV_ERR_KEY_INVALID naming the file and what is wrong when it is not one. */
export function readControllerSeed(file: string): Uint8Array {
  return readNkeySeed(file, (f) => readFileSync(f, 'utf8'), CONTROLLER_SEED_HINT);
}

/** Creates the controller's nkey seed if missing; returns its public key. */
export function initControllerNkey(stateDir: string): { publicKey: string; created: boolean; file: string } {
  const file = controllerNkeyFile(stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!existsSync(file)) {
    const kp = createUser();
    writeFileSync(file, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    created = true;
  }
  return { publicKey: nkeyPublic(file), created, file };
}

/** The public key of the nkey seed in `file` (MV_ERR_KEY_INVALID naming the file when it is not one). */
export function nkeyPublic(file: string): string {
  return fromSeed(readControllerSeed(file)).getPublicKey();
}

export class SiteRegistry {
  constructor(private readonly stateDir: string) {}

  private get dir(): string {
    return join(this.stateDir, 'sites');
  }

  list(): SiteRecord[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => {
        const p = recordSchema.safeParse(JSON.parse(readFileSync(join(this.dir, f), 'utf8')));
        if (!p.success) throw new MedvaultError(codes.MESSAGE_INVALID, `${join(this.dir, f)}: not a site record`);
        return p.data;
      });
  }

  get(site: string): SiteRecord | undefined {
    return this.list().find((s) => s.site === site);
  }

  /**
   * Enrols `site`: a new nkey pair; the record (public key) is written here, the seed returned
   * for the bundle. MV_ERR_CONFLICT if the site exists (use `rotate` to replace its key).
   */
  add(site: string, by: string, now: number, opts: { rotate?: boolean } = {}): { record: SiteRecord; seed: string } {
    if (!SITE_RE.test(site)) throw new MedvaultError(codes.CONFIG_INVALID, `site ${JSON.stringify(site)}: lowercase letters, digits and -, at most 63`);
    const file = join(this.dir, `${site}.json`);
    if (existsSync(file) && !opts.rotate) throw new MedvaultError(codes.CONFLICT, `site ${site} is already enrolled (give --rotate to issue a new key; the old one stops working at the next nats-config)`);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const kp = createUser();
    const record: SiteRecord = { v: 1, site, nkey: kp.getPublicKey(), enrolledAt: now, enrolledBy: by };
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    return { record, seed: new TextDecoder().decode(kp.getSeed()) };
  }
}

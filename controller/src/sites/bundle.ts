/**
 * The enrolment bundle a new appliance installs (a folder; tar it to carry it):
 *   agent.toml      skeleton with site, pinned controller key, NATS servers, nkey and CA files
 *   site.nk         the site's nkey seed (0600): its only NATS credential
 *   ca.pem          the private CA that signed the NATS server certificate
 *   controller.pub  the controller's Ed25519 public key (also in agent.toml)
 *   README.txt      how to install it
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MedvaultError, codes } from '@medvault/protocol';

export interface BundleInput {
  site: string;
  seed: string;
  controllerPublicKey: string;
  natsServers: string[];
  caFile: string;
}

export function writeBundle(dir: string, b: BundleInput): string[] {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new MedvaultError(codes.CONFLICT, `${dir} exists and is not empty`);
  if (!existsSync(b.caFile)) throw new MedvaultError(codes.CONFIG_INVALID, `${b.caFile}: CA certificate missing (deploy/make-ca.sh makes one; set nats.ca_file)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  writeFileSync(join(dir, 'site.nk'), `${b.seed}\n`, { mode: 0o600 });
  copyFileSync(b.caFile, join(dir, 'ca.pem'));
  chmodSync(join(dir, 'ca.pem'), 0o644);
  writeFileSync(join(dir, 'controller.pub'), `${b.controllerPublicKey}\n`, { mode: 0o644 });
  const toml = [
    `# medvault agent configuration for site ${b.site}, from medvault-controller site add.`,
    '# Fill in the marked lines, then install as /etc/medvault/agent.toml.',
    `site = ${JSON.stringify(b.site)}`,
    'state_dir = "/var/lib/medvault"',
    'key_file = "credential:local.key"           # /etc/medvault/credentials/local.key (made by init; systemd LoadCredential=)',
    'recovery_public_key = "FILL-IN: medvault-agent recovery-key generate prints it"',
    `controller_public_key = ${JSON.stringify(b.controllerPublicKey)}`,
    'restore_roots = ["/srv/records"]            # FILL-IN: where orders may restore',
    '[nats]',
    `servers = ${JSON.stringify(b.natsServers)}`,
    'nkey_file = "credential:site.nk"            # this bundle\'s site.nk in /etc/medvault/credentials, mode 0600',
    'ca_file = "/etc/medvault/ca.pem"            # this bundle\'s ca.pem',
    '[[disks]]',
    'path = "/mnt/backup1/medvault"              # FILL-IN',
    '[[stores]]',
    'name = "records"',
    'type = "files"',
    'path = "/srv/records"                       # FILL-IN',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'agent.toml'), toml, { mode: 0o600 });
  writeFileSync(
    join(dir, 'README.txt'),
    [
      `medvault enrolment bundle for site ${b.site}`,
      '',
      'On the appliance, as root:',
      '  install -d -m 700 /etc/medvault /etc/medvault/credentials',
      '  install -m 600 site.nk /etc/medvault/credentials/site.nk   # the unit\'s LoadCredential=site.nk',
      '  install -m 644 ca.pem /etc/medvault/ca.pem',
      '  install -m 600 agent.toml /etc/medvault/agent.toml   # then fill in the FILL-IN lines',
      '  medvault-agent init && systemctl enable --now medvault-agent',
      '',
      'site.nk is the appliance\'s only NATS credential: it may write only this site\'s objects and',
      'events and read only this site\'s orders, receipts and off-site copies. Destroy this folder',
      'once installed. If it leaks: medvault-controller site add ' + b.site + ' --rotate, then nats-config.',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  return ['agent.toml', 'site.nk', 'ca.pem', 'controller.pub', 'README.txt'];
}

/** `medvault-agent recovery-key generate --out FILE`: a new organisation recovery key pair. */
import type { Command } from 'commander';
import { writeRecoveryKeyPair } from '../crypto/recovery-key-file.js';
import type { CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  const cmd = program.command('recovery-key').description('manage the organisation recovery key');
  cmd
    .command('generate')
    .description('write a new private recovery key to FILE (mode 0600) and print the public half for agent.toml')
    .requiredOption('--out <file>', 'where to write the private key; keep it offline')
    .action(async (opts: { out: string }) => {
      const publicKey = await writeRecoveryKeyPair(opts.out);
      ctx.print(`recovery_public_key = "${publicKey}"\n# private key written to ${opts.out}: keep it offline`, { command: 'recovery-key generate', publicKey, privateKeyFile: opts.out });
    });
}

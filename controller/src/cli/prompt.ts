/** Reading secrets: from a TTY without echo, or all of stdin (one line, trailing newline dropped). */
import { createInterface } from 'node:readline';
import { MedvaultError, codes } from '@medvault/protocol';

/** Prompts on stderr and reads a line; with `hidden` the typed characters are not echoed. */
export function ask(question: string, hidden = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (hidden) {
      const out = rl as unknown as { _writeToOutput: (s: string) => void };
      out._writeToOutput = (s: string) => {
        if (s.startsWith(question)) process.stderr.write(question);
        else if (s.includes('\n') || s.includes('\r')) process.stderr.write('\n');
      };
    }
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
    rl.on('SIGINT', () => {
      rl.close();
      reject(new Error('interrupted'));
    });
  });
}

/**
 * All of stdin as one line of text, without its trailing newline. More than one line is refused
 * (MV_ERR_CONFIG_INVALID), never taken as a secret with a line break in it: `printf 'pw\npw\n'`,
 * the answers to the two password prompts, had set a password no login could type.
 */
export async function readStdin(input: AsyncIterable<Buffer | string> = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(Buffer.from(c));
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  const lines = text.split(/\r?\n/).length;
  if (lines > 1) throw new MedvaultError(codes.CONFIG_INVALID, `stdin holds ${lines} lines: give the password once, as one line`);
  return text;
}

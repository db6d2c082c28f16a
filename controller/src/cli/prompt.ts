/** Reading secrets: from a TTY without echo, or all of stdin (one line, trailing newline dropped). */
import { createInterface } from 'node:readline';

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

/** All of stdin as text, without one trailing newline. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

// What the controller's bins share: run a program of controller/dist/, or, when it is not built
// yet (a fresh clone after `npm ci`), say so and exit 2, as the agent's launcher does, rather
// than let node print ERR_MODULE_NOT_FOUND's stack.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Imports `dist/<program>` beside this folder (the program runs as it loads); exits 2 when it is missing. */
export async function startBuilt(name, program) {
  const url = new URL(`../dist/${program}`, import.meta.url);
  const file = fileURLToPath(url);
  if (!existsSync(file)) {
    process.stderr.write(`${name}: ${file} is missing: run npm run build\n`);
    process.exit(2);
  }
  await import(url.href);
}

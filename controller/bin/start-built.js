// What the controller's bins share: run a program of controller/dist/, or, when it is not built
// yet (a fresh clone after `npm ci`) or only in part (a build stopped half-way, a file removed),
// say so and exit 2, as the agent's launcher does, rather than let node print ERR_MODULE_NOT_FOUND's stack.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Imports `dist/<program>` beside this folder (the program runs as it loads); exits 2 when it, or a built file it imports, is missing. */
export async function startBuilt(name, program) {
  const url = new URL(`../dist/${program}`, import.meta.url);
  const missing = (file) => {
    process.stderr.write(`${name}: ${file} is missing: run npm run build\n`);
    process.exit(2);
  };
  if (!existsSync(fileURLToPath(url))) missing(fileURLToPath(url));
  const root = new URL('../../', import.meta.url).href; // the packages' folder: their dist/ are built together
  try {
    await import(url.href);
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && typeof err.url === 'string' && err.url.startsWith(root) && err.url.includes('/dist/')) missing(fileURLToPath(err.url));
    throw err;
  }
}

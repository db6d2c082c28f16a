/**
 * `npm run demo`: the main job on an embedded default. Prints a short human summary with timings;
 * with --json the last line is one JSON object. Exit 0 only when every record came back verified.
 *   npm run demo -- [--records DIR | --generated] [--json] [--keep]
 */
import { existsSync, statSync } from 'node:fs';
import { runScenario } from './support/scenario.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const at = args.indexOf('--records');
const records = args.includes('--generated') ? 'generate' : at >= 0 ? args[at + 1] : undefined;
if (at >= 0 && (!records || !existsSync(records) || !statSync(records).isDirectory())) {
  console.error(`medvault demo: --records needs an existing folder${records ? ` (${records} is not one)` : ''}`);
  process.exit(2);
}
const started = Date.now();
const summary = await runScenario({ ...(records ? { records } : {}), keep: args.includes('--keep'), say: (l) => console.log(`medvault demo: ${l}`) });
const total = (Date.now() - started) / 1000;
console.log(
  `medvault demo: ${summary.ok ? 'OK' : 'FAILED'} in ${total.toFixed(1)} s — ` +
    Object.entries(summary.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ') +
    (summary.error ? `\nmedvault demo: error: ${summary.error}` : ''),
);
if (json) console.log(JSON.stringify({ ...summary, seconds: { ...summary.seconds, total } }));
process.exit(summary.ok ? 0 : 1);

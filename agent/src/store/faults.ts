/**
 * Named fault points for crash and failure testing. Every write, fsync, rename, link and unlink of
 * a repository file passes one (`faultPoint(name, subject)`); they do nothing unless the
 * environment variable MEDVAULT_FAULTS is set, read once per process:
 *
 *   MEDVAULT_FAULTS="at=17"                  the 17th point hit (1-based) fires
 *   MEDVAULT_FAULTS="seed=42,rate=0.05"      each point fires with probability 5%, deterministically per seed
 *   ...,action=kill|eio|enospc|erofs|stop    kill: SIGKILL this process (default); stop: SIGSTOP it (a
 *                                            test then signals it and sends SIGCONT); others throw that errno
 *   ...,match=SUBSTRING                      only points whose name or subject contains SUBSTRING count;
 *                                            without at or rate, every one of them fires (a failing disk)
 *   ...,log=FILE                             append "n name subject" for every counted point hit
 *
 * The harness runs a command once with `log` to learn how many points it passes, then once per
 * point with `at=n`, and checks the repository after each kill.
 */
import { appendFileSync } from 'node:fs';

interface FaultSpec {
  at?: number;
  seed?: number;
  rate?: number;
  action: 'kill' | 'eio' | 'enospc' | 'erofs' | 'stop';
  match?: string;
  log?: string;
}

const errnos = { eio: ['EIO', -5], enospc: ['ENOSPC', -28], erofs: ['EROFS', -30] } as const;

function parse(text: string | undefined): FaultSpec | undefined {
  if (!text) return undefined;
  const spec: FaultSpec = { action: 'kill' };
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 'at') spec.at = Number(v);
    else if (k === 'seed') spec.seed = Number(v) >>> 0;
    else if (k === 'rate') spec.rate = Number(v);
    else if (k === 'action' && (v === 'kill' || v === 'eio' || v === 'enospc' || v === 'erofs' || v === 'stop')) spec.action = v;
    else if (k === 'match') spec.match = v;
    else if (k === 'log') spec.log = v;
  }
  return spec;
}

let spec: FaultSpec | undefined = parse(process.env.MEDVAULT_FAULTS);
let hits = 0;
let rng = (spec?.seed ?? 1) || 1;

/** xorshift32: a tiny deterministic generator for seeded fault choice. */
function random(): number {
  rng ^= rng << 13;
  rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng / 0x100000000;
}

/** Test hook: replaces the process's fault spec (undefined switches faults off) and resets the count. */
export function setFaults(text: string | undefined): void {
  spec = parse(text);
  hits = 0;
  rng = (spec?.seed ?? 1) || 1;
}

/** How many counted fault points this process has passed. */
export function faultHits(): number {
  return hits;
}

/**
 * A fault point: MUST be called immediately before the operation it names. Fires (kills the
 * process, or throws an errno error) when MEDVAULT_FAULTS selects it; otherwise returns at once.
 */
export function faultPoint(name: string, subject = ''): void {
  if (!spec) return;
  if (spec.match && !name.includes(spec.match) && !subject.includes(spec.match)) return;
  hits++;
  if (spec.log) appendFileSync(spec.log, `${hits} ${name} ${subject}\n`);
  const fire = spec.at !== undefined ? hits === spec.at : spec.rate !== undefined ? random() < spec.rate : spec.match !== undefined;
  if (!fire) return;
  if (spec.action === 'kill') {
    process.kill(process.pid, 'SIGKILL');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000); // never returns: the signal lands first
  }
  if (spec.action === 'stop') return void process.kill(process.pid, 'SIGSTOP'); // goes on after SIGCONT
  const [code, errno] = errnos[spec.action as keyof typeof errnos];
  throw Object.assign(new Error(`${code}: injected fault at ${name} ${subject}`), { code, errno, syscall: name });
}

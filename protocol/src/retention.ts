/**
 * Retention: which snapshots a policy keeps, a pure function shared by the agent (forget, on-site)
 * and the controller (off-site pruning, by receipt time). applyPolicy never reads the clock. Per store:
 * 1. Order snapshots by their parent chain (a child always after its parent), then time, then hash;
 *    a snapshot's effective time is max(its time, its parent's effective time), so a clock that
 *    jumped back (RTC reset) cannot make the newest backups look oldest.
 * 2. Walk newest first. A snapshot is kept, with every reason that applies, when it carries a hold
 *    tag (legal hold: nothing deletes it); is among the `last` newest; is the newest of a new
 *    hour/day/ISO week/month/year bucket (UTC) while that rule has slots left; or lies within
 *    `withinMs` of the newest snapshot's effective time (not of now).
 * 3. A policy without any rule keeps everything.
 */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep everything within this many ms of the newest snapshot. */
  withinMs?: number;
  /** Tags that put a snapshot on legal hold; `legal-hold` always does. */
  holdTags?: string[];
}

export interface PolicySnapshot {
  hash: string;
  time: number;
  store: string;
  parent?: string;
  tags: string[];
}

export interface Decision {
  hash: string;
  store: string;
  time: number;
  keep: boolean;
  /** Why it is kept (empty when it goes). */
  reasons: string[];
}

export const LEGAL_HOLD = 'legal-hold';
const buckets = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const y = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(y, 0, 1)) / 86_400_000 + 1) / 7);
  return `${y}-W${String(week).padStart(2, '0')}`;
}

export function bucketOf(rule: (typeof buckets)[number], time: number): string {
  const iso = new Date(time).toISOString();
  if (rule === 'hourly') return iso.slice(0, 13);
  if (rule === 'daily') return iso.slice(0, 10);
  if (rule === 'weekly') return isoWeek(new Date(time));
  if (rule === 'monthly') return iso.slice(0, 7);
  return iso.slice(0, 4);
}

/** Chain order of one store's snapshots, oldest first, with effective times. */
export function orderSnapshots<T extends PolicySnapshot>(snaps: T[]): { s: T; effective: number }[] {
  const byHash = new Map(snaps.map((s) => [s.hash, s]));
  const depth = new Map<string, number>();
  const eff = new Map<string, number>();
  const visit = (s: T, guard: number): [number, number] => {
    const d = depth.get(s.hash);
    if (d !== undefined) return [d, eff.get(s.hash)!];
    const p = s.parent !== undefined && s.parent !== s.hash && guard < 100_000 ? byHash.get(s.parent) : undefined;
    const [pd, pe] = p ? visit(p, guard + 1) : [-1, -Infinity];
    depth.set(s.hash, pd + 1);
    eff.set(s.hash, Math.max(s.time, pe));
    return [pd + 1, Math.max(s.time, pe)];
  };
  for (const s of snaps) visit(s, 0);
  return snaps
    .map((s) => ({ s, effective: eff.get(s.hash)!, depth: depth.get(s.hash)! }))
    .sort((a, b) => a.effective - b.effective || a.depth - b.depth || a.s.time - b.s.time || a.s.hash.localeCompare(b.s.hash))
    .map(({ s, effective }) => ({ s, effective }));
}

export function hasRules(p: RetentionPolicy): boolean {
  return [p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly, p.withinMs].some((v) => v !== undefined && v > 0);
}

/** Decides, for every snapshot, whether the policy keeps it and why; pure and clock-free. */
export function applyPolicy(snaps: PolicySnapshot[], p: RetentionPolicy): Decision[] {
  const holds = new Set([LEGAL_HOLD, ...(p.holdTags ?? [])]);
  const out: Decision[] = [];
  const stores = [...new Set(snaps.map((s) => s.store))].sort();
  for (const store of stores) {
    const ordered = orderSnapshots(snaps.filter((s) => s.store === store)).reverse(); // newest first
    const newest = ordered[0]?.effective ?? 0;
    const left: Record<string, number> = { hourly: p.hourly ?? 0, daily: p.daily ?? 0, weekly: p.weekly ?? 0, monthly: p.monthly ?? 0, yearly: p.yearly ?? 0 };
    const lastBucket: Record<string, string | undefined> = {};
    ordered.forEach(({ s, effective }, i) => {
      const reasons: string[] = [];
      for (const t of s.tags) if (holds.has(t)) reasons.push(`legal hold (tag ${t})`);
      if (!hasRules(p)) reasons.push('no retention rule: everything is kept');
      if (p.last !== undefined && i < p.last) reasons.push(`last ${i + 1} of ${p.last}`);
      for (const rule of buckets) {
        if (left[rule]! <= 0) continue;
        const b = bucketOf(rule, effective);
        if (b === lastBucket[rule]) continue;
        lastBucket[rule] = b;
        left[rule]!--;
        reasons.push(`${rule} ${b}`);
      }
      if (p.withinMs !== undefined && p.withinMs > 0 && effective >= newest - p.withinMs) reasons.push(`within ${formatDuration(p.withinMs)} of the newest snapshot`);
      out.push({ hash: s.hash, store, time: s.time, keep: reasons.length > 0, reasons });
    });
  }
  return out;
}

const units: [string, number][] = [
  ['y', 365 * 86_400_000],
  ['m', 30 * 86_400_000],
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
];

/** "1y2m3d4h" (y = 365 d, m = 30 d, w = 7 d) → ms; undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+[ymwdh])+$/.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+)([ymwdh])/g)) ms += Number(m[1]) * units.find(([u]) => u === m[2])![1];
  return ms;
}

export function formatDuration(ms: number): string {
  const parts: string[] = [];
  for (const [u, n] of units) {
    if (ms >= n) {
      parts.push(`${Math.floor(ms / n)}${u}`);
      ms %= n;
    }
  }
  return parts.join('') || '0h';
}

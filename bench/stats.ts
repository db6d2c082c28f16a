/** The `q` quantile (0..1) of `xs` by the nearest-rank method, rounded to `digits`; NaN when empty. */
export function quantile(xs: number[], q: number, digits = 2): number {
  const s = [...xs].sort((a, b) => a - b);
  const f = 10 ** digits;
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * f) / f : NaN;
}

/** What both sides' command lines share: the figures they print, how they read options (pure). */

/** Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** A count and its noun, plural unless the count is 1: `1 file`, `2 files`, `0 files`, `3 off-site copies`. */
export function formatCount(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/**
 * A plain-text table: each column as wide as its widest cell (header included), two spaces
 * between columns, numbers' columns (`right`) aligned right, no trailing spaces. One line per row,
 * the header first.
 */
export function formatTable(columns: { header: string; right?: boolean }[], rows: string[][]): string[] {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => columns.map((c, i) => (c.right ? (cells[i] ?? '').padStart(widths[i]!) : (cells[i] ?? '').padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)];
}

/**
 * Commander's collector for an option given more than once (`--path a --path b`): each value is
 * appended, in order, to the previous ones. Pair it with the default `[]`.
 */
export function repeatable(value: string, previous: string[]): string[] {
  return [...previous, value];
}

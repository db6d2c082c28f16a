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
 * What one file weighs in a progress bar's work, in bytes: creating, syncing and renaming a file
 * costs about the time of this much data, so a bar over many small files moves with them and does
 * not reach its end while the small ones are still to come (a bar by bytes alone had shown 100%
 * with a quarter of the files left).
 */
const FILE_WORK = 64 * 1024;

/** The work of `files` files holding `bytes` bytes, in one unit for a progress bar's value and total. */
export function progressWork(files: number, bytes: number): number {
  return bytes + files * FILE_WORK;
}

/**
 * The percentage a progress bar shows for `value` of `total`: undefined when the total is not
 * known, and at most 99 until the command knows it is done (a total may be an estimate, and a
 * restore still syncs after its last file).
 */
export function progressPercent(value: number, total: number | undefined): number | undefined {
  if (total === undefined || total <= 0) return undefined;
  return Math.min(99, Math.floor((100 * value) / total));
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

/** C0 controls, DEL and C1 controls: what a terminal may act on instead of showing. */
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_ALL_RE = /[\u0000-\u001f\u007f-\u009f]/g;
const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

/**
 * `s` safe to print on one line of a terminal: every control character (U+0000-U+001F, U+007F,
 * U+0080-U+009F) becomes a visible escape (`\n`, `\r`, `\t`, `\e` for ESC, `\xNN` otherwise), so a
 * file name cannot forge an output line or send a terminal escape sequence. Everything else
 * (non-ASCII letters, U+FFFD) is kept; a string without controls is returned as is. `keep`: the
 * controls a caller put there itself and keeps (`'\n'` for text of several lines, `'\n\t'` for
 * tab-separated columns). The result holds no other control character, so escaping it again
 * changes nothing (a backslash is not escaped: the form is for reading, not for turning back into
 * the name).
 */
export function printable(s: string, keep = ''): string {
  if (!CONTROL_RE.test(s)) return s;
  return s.replace(CONTROL_ALL_RE, (c) => (keep.includes(c) ? c : (ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)));
}

/**
 * Commander's collector for an option given more than once (`--path a --path b`): each value is
 * appended, in order, to the previous ones. Pair it with the default `[]`.
 */
export function repeatable(value: string, previous: string[]): string[] {
  return [...previous, value];
}

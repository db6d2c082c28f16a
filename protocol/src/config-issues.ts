/**
 * Configuration mistakes, as both programs report them: `file:line: key: what was expected, got
 * what`. Pure text and schema work (no I/O): `locateKey` finds the TOML line that sets a key,
 * `schemaIssues` turns a zod error into one precise issue per mistake, naming the expected range,
 * unit or choices from the schema itself.
 */
import { readFileSync, statSync } from 'node:fs';
import type { z } from 'zod';

export type ConfigPath = readonly (string | number)[];

/** One mistake in a configuration file. `line` is 1-based; absent only for a missing top-level key. */
export interface ConfigIssue {
  file: string;
  line?: number;
  column?: number;
  /** `stores[1].rpo_s`, or `(syntax)` for a TOML syntax error. */
  key: string;
  message: string;
}

/** `file:line: key: message` (the line is left out when unknown); a file that cannot be read: its message alone, which names it. */
export function formatIssue(i: ConfigIssue): string {
  if (i.key === FILE_KEY) return i.message;
  return `${i.file}${i.line !== undefined ? `:${i.line}` : ''}: ${i.key}: ${i.message}`;
}

const FILE_KEY = '(file)';

/**
 * The text of the configuration file `file`, or why it cannot be read. A FIFO, socket or device
 * is refused before it is opened: reading a FIFO that nobody writes blocks for good, deaf to
 * Ctrl-C and SIGTERM, and a device may never end.
 */
export function readConfigText(file: string): { text: string } | { issue: ConfigIssue } {
  try {
    const st = statSync(file);
    if (!st.isFile() && !st.isDirectory()) return { issue: { file, key: FILE_KEY, message: `config file ${file} is ${st.isFIFO() ? 'a FIFO (named pipe)' : st.isSocket() ? 'a socket' : 'a device'}, not a file` } };
    return { text: readFileSync(file, 'utf8') };
  } catch (cause) {
    return { issue: fileIssue(file, cause) };
  }
}

/** A configuration file that could not be read (`err` from reading it), in plain words. */
export function fileIssue(file: string, err: unknown): ConfigIssue {
  const code = (err as { code?: unknown }).code;
  const why =
    code === 'ENOENT' ? 'does not exist'
    : code === 'EACCES' || code === 'EPERM' ? 'cannot be read: permission denied (read it as its owner or root, or give this user read access)'
    : code === 'EISDIR' ? 'is a directory, not a file'
    : `cannot be read: ${(err as Error).message ?? String(err)}`;
  return { file, key: FILE_KEY, message: `config file ${file} ${why}` };
}

/** `stores[1].rpo_s` for ['stores', 1, 'rpo_s']. */
export function keyName(path: ConfigPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out || '(top level)';
}


/** Splits a TOML key (`a."b.c".d`) into its parts. */
function splitKey(k: string): string[] {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < k.length && (m = re.exec(k))) {
    parts.push(m[1] ?? m[2] ?? m[3]!);
    if (m[4] === '') break;
  }
  return parts;
}

/**
 * Maps every table header and key in a TOML text to the line (1-based) that sets it, with arrays
 * of tables counted (`[[stores]]` twice gives `stores.0` and `stores.1`). A best-effort scan of the
 * text, good for error messages; the parser proper is smol-toml.
 */
export function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  const counts = new Map<string, number>();
  let table: (string | number)[] = [];
  let multiline: string | undefined;
  const set = (p: (string | number)[], n: number) => {
    const k = p.join('.');
    if (!lines.has(k)) lines.set(k, n);
  };
  // Resolves a header path: each array-of-tables prefix refers to its last entry.
  const resolve = (parts: string[]): (string | number)[] => {
    const out: (string | number)[] = [];
    for (const part of parts) {
      out.push(part);
      const c = counts.get(out.join('.'));
      if (c !== undefined) out.push(c - 1);
    }
    return out;
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (multiline) {
      if (line.includes(multiline)) multiline = undefined;
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    let m = /^\[\[\s*([^\]]+?)\s*\]\]/.exec(line);
    if (m) {
      const parts = splitKey(m[1]!);
      const parent = resolve(parts.slice(0, -1));
      const base = [...parent, parts[parts.length - 1]!].join('.');
      const c = (counts.get(base) ?? 0) + 1;
      counts.set(base, c);
      table = [...parent, parts[parts.length - 1]!, c - 1];
      set(table.slice(0, -1), n);
      set(table, n);
      return;
    }
    m = /^\[\s*([^\]]+?)\s*\]/.exec(line);
    if (m) {
      table = resolve(splitKey(m[1]!));
      set(table, n);
      return;
    }
    m = /^((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=\s*(.*)$/.exec(line);
    if (m) {
      const key = splitKey(m[1]!);
      if (key.length === 0) return;
      for (let j = 1; j <= key.length; j++) set([...table, ...key.slice(0, j)], n);
      const value = m[2]!;
      for (const q of ['"""', "'''"]) if (value.startsWith(q) && !value.slice(3).includes(q)) multiline = q;
    }
  });
  return lines;
}

/** The line that sets `path`, or else the nearest enclosing table or key that has one. */
export function locateKey(text: string | Map<string, number>, path: ConfigPath): number | undefined {
  const lines = typeof text === 'string' ? keyLines(text) : text;
  for (let j = path.length; j > 0; j--) {
    const n = lines.get(path.slice(0, j).join('.'));
    if (n !== undefined) return n;
  }
  return undefined;
}

// ── describing what the schema expects ─────────────────────────────────────────────────────────

type AnySchema = z.ZodType & { _zod: { def: Record<string, any> } };

function unwrap(s: AnySchema | undefined): AnySchema | undefined {
  for (let i = 0; s && i < 20; i++) {
    const t = s._zod.def.type;
    if (t === 'default' || t === 'optional' || t === 'nullable' || t === 'prefault' || t === 'readonly' || t === 'catch') s = s._zod.def.innerType;
    else if (t === 'pipe') s = s._zod.def.in;
    else return s;
  }
  return s;
}

/** The schema at `path`, following discriminated unions by the value actually given. */
function schemaAt(root: AnySchema, raw: unknown, path: ConfigPath): AnySchema | undefined {
  let s = unwrap(root);
  let v: any = raw;
  for (const p of path) {
    s = unwrap(pickOption(s, v));
    if (!s) return undefined;
    const t = s._zod.def.type;
    if (t === 'object') s = s._zod.def.shape[p as string];
    else if (t === 'array') s = s._zod.def.element;
    else return undefined;
    v = v?.[p];
  }
  return unwrap(pickOption(unwrap(s), v));
}

function pickOption(s: AnySchema | undefined, v: any): AnySchema | undefined {
  if (!s || s._zod.def.type !== 'union') return s;
  const options = s._zod.def.options as AnySchema[];
  const disc = s._zod.def.discriminator as string | undefined;
  if (disc && v && typeof v === 'object') {
    const hit = options.find((o) => (unwrap(o)?._zod.def.shape?.[disc] as AnySchema | undefined)?.safeParse(v[disc]).success);
    if (hit) return hit;
  }
  return options[0];
}

function unitOf(key: string | number | undefined): string {
  if (typeof key !== 'string') return '';
  if (/_s$/.test(key)) return ' of seconds';
  if (/_ms$/.test(key)) return ' of milliseconds';
  if (/_minutes$/.test(key)) return ' of minutes';
  if (/_bytes$/.test(key)) return ' of bytes';
  return '';
}

const quote = (v: unknown) => JSON.stringify(v);
const choices = (vs: readonly unknown[]) => (vs.length === 1 ? quote(vs[0]) : `one of ${vs.map(quote).join(', ')}`);

/** What a value at `path` must be, in words, from the schema. */
export function expectedAt(root: z.ZodType, raw: unknown, path: ConfigPath): string {
  return describe(schemaAt(root as AnySchema, raw, path), path[path.length - 1]);
}

function describe(s: AnySchema | undefined, key: string | number | undefined): string {
  if (!s) return 'no such key';
  const d = s._zod.def;
  switch (d.type) {
    case 'number': {
      const n = s as unknown as { minValue: number | null; maxValue: number | null; isInt: boolean };
      const min = n.minValue ?? -Infinity;
      const max = n.maxValue ?? Infinity;
      const range = Number.isFinite(min) && Number.isFinite(max) && Math.abs(max) < 1e15 ? ` (${min}-${max})` : Number.isFinite(min) && min > -1e15 ? ` (at least ${min})` : '';
      const unit = unitOf(key);
      if (typeof key === 'string' && /(^|_)port$/.test(key)) return `a TCP port${range}`;
      return `${n.isInt && !unit ? 'a whole number' : 'a number'}${unit}${range}`;
    }
    case 'string':
      return typeof key === 'string' && /(^|_)(path|file|dir)$/.test(key) ? 'a path' : 'a string';
    case 'boolean':
      return 'true or false';
    case 'literal':
      return choices(d.values as unknown[]);
    case 'enum':
      return choices(Object.values(d.entries as Record<string, unknown>));
    case 'array':
      return `a list of ${plural(describe(unwrap(d.element), undefined))}`;
    case 'object':
      return 'a table';
    case 'union': {
      const disc = d.discriminator as string | undefined;
      return disc ? `a table with ${disc} = ${choices((d.options as AnySchema[]).flatMap((o) => valuesOf(unwrap(o)!._zod.def.shape[disc] as AnySchema)))}` : 'a valid value';
    }
    default:
      return 'a valid value';
  }
}

/** The values a literal or an enum allows (a union's tag may be either: `type = "files"`, `type = "postgres" | "mysql"`). */
function valuesOf(s: AnySchema): unknown[] {
  const d = s._zod.def;
  return d.type === 'enum' ? Object.values(d.entries as Record<string, unknown>) : [...((d.values as unknown[] | undefined) ?? [])];
}

/**
 * A description in the plural, for a list's elements: its noun takes the s (`a table with type =
 * "files"` → `tables with type = "files"`, `a whole number (1-10)` → `whole numbers (1-10)`); one
 * that has no noun (`one of "a", "b"`, `true or false`) is kept as each element's.
 */
function plural(one: string): string {
  if (!/^an? /.test(one)) return `values, each ${one}`;
  const bare = one.replace(/^an? /, '');
  const at = bare.search(/ with | of | as | \(|:|$/);
  const noun = bare.slice(0, at);
  return `${noun.endsWith('s') ? noun : `${noun}s`}${bare.slice(at)}`;
}

function got(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list of ${v.length}`;
  if (v !== null && typeof v === 'object') return v instanceof Date ? `a date (${v.toISOString()})` : 'a table';
  return quote(v);
}

function valueAt(raw: unknown, path: ConfigPath): unknown {
  let v: any = raw;
  for (const p of path) v = v?.[p];
  return v;
}

/** Zod's own messages; anything else was written in the schema and says what is expected. */
const zodDefault = /^(Invalid|Too (small|big)|Unrecognized|Expected)/;

/**
 * Every mistake in `error`, each with the line of its key in `text` and what the schema expects
 * there: `stores[1].rpo_s: expected a number of seconds (1-86400), got "fast"`.
 */
export function schemaIssues(file: string, text: string, raw: unknown, root: z.ZodType, error: z.ZodError): ConfigIssue[] {
  const lines = keyLines(text);
  const out: ConfigIssue[] = [];
  const push = (path: ConfigPath, message: string) => {
    const line = locateKey(lines, path);
    out.push({ file, ...(line !== undefined ? { line } : {}), key: keyName(path), message });
  };
  for (const issue of error.issues) {
    const path = issue.path as (string | number)[];
    const value = valueAt(raw, path);
    const custom = !zodDefault.test(issue.message) ? issue.message : undefined;
    const expected = () => custom ?? expectedAt(root, raw, path);
    switch (issue.code) {
      case 'unrecognized_keys': {
        const table = schemaAt(root as AnySchema, raw, path);
        const known = table?._zod.def.type === 'object' ? Object.keys(table._zod.def.shape) : [];
        for (const k of issue.keys) push([...path, k], `unknown key (expected one of: ${known.join(', ')})`);
        break;
      }
      case 'invalid_type':
        push(path, value === undefined ? `missing: expected ${expected()}` : `expected ${expected()}, got ${got(value)}`);
        break;
      case 'invalid_union':
        push(path, `expected ${'options' in issue && Array.isArray(issue.options) ? choices(issue.options) : expected()}, got ${got(value)}`);
        break;
      case 'invalid_value':
        push(path, `expected ${choices(issue.values)}, got ${got(value)}`);
        break;
      case 'too_small':
        push(path, Array.isArray(value) ? `expected ${custom ?? `at least ${issue.minimum} entries`}, got ${value.length === 0 ? 'none' : value.length}` : `expected ${expected()}, got ${got(value)}`);
        break;
      case 'custom':
        if (custom?.startsWith('not a')) push(path, `expected ${custom.slice(4)}, got ${got(value)}`);
        else push(path, custom && !/^(a|an|at) /.test(custom) ? `${custom}, got ${got(value)}` : `expected ${expected()}, got ${got(value)}`);
        break;
      default:
        push(path, `expected ${expected()}, got ${got(value)}`);
    }
  }
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

/**
 * A TOML syntax error (smol-toml's TomlError carries line and column) as an issue. smol-toml
 * reports a string whose closing quote is missing as "control characters are not allowed" (the
 * line break it runs into) or, at the end of the file, "unfinished string": both are said as an
 * unterminated string at the line it opens on.
 */
export function syntaxIssue(file: string, err: unknown, text: string): ConfigIssue {
  const e = err as { message?: string; line?: number; column?: number };
  let first = String(e.message ?? err).split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
  const line = e.line !== undefined ? text.split('\n')[e.line - 1] : undefined;
  // the line break itself: past the line's last character, or the CR of its CRLF (a CR elsewhere is a control character)
  const atEnd = line !== undefined && e.column !== undefined && (e.column > line.length || (e.column === line.length && line.endsWith('\r')));
  if (first.startsWith('control characters are not allowed in strings') && atEnd) first = 'unterminated string: no closing quote before the end of the line';
  else if (first === 'unfinished string') first = 'unterminated string: no closing quote before the end of the file';
  return { file, ...(e.line !== undefined ? { line: e.line } : {}), ...(e.column !== undefined ? { column: e.column } : {}), key: '(syntax)', message: `${first}${e.column !== undefined ? ` (column ${e.column})` : ''}` };
}

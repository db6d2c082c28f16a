/**
 * Reports: one document type (mv.report.v1: title, subjects, period, sections of key facts,
 * paragraphs and tables, with pass/fail marks) rendered as canonical JSON, self-contained printable
 * HTML and PDF (pdfkit). Every form carries the controller's Ed25519 signature over the canonical
 * JSON of the report without `sig`; the JSON (also embedded in the HTML and attached to the PDF as
 * report.json) is what `medvault-controller report verify` checks.
 * Rules: rendering is a function of the report alone (the PDF's dates and file id come from
 * `generatedAt`, so the same report gives the same bytes); text the PDF fonts cannot show becomes '?'.
 */
import { readFileSync } from 'node:fs';
import PDFDocument from 'pdfkit';
import { z } from 'zod';
import { MedvaultError, canonicalJson, codes, signMessage, signature, time, verifyMessage, type SigningKey } from '@medvault/protocol';
import type { KeyObject } from 'node:crypto';

export const marks = ['pass', 'fail', 'warn', 'info'] as const;
export type Mark = (typeof marks)[number];

const text = (max: number) => z.string().max(max);
const mark = z.enum(marks).optional();
const cell = z.union([text(20_000), z.number()]);

export const reportFact = z.strictObject({ label: text(200), value: cell, mark });
export const reportTable = z.strictObject({
  title: text(300).optional(),
  columns: z.array(text(100)).min(1).max(20),
  rows: z.array(z.strictObject({ cells: z.array(cell).max(20), mark })).max(100_000),
});
export const reportSection = z.strictObject({
  heading: text(300),
  mark,
  facts: z.array(reportFact).max(200).default([]),
  paragraphs: z.array(text(20_000)).max(200).default([]),
  tables: z.array(reportTable).max(50).default([]),
});

/** mv.report.v1: a signed report (drill, incident, compliance, backup-log review…). */
export const report = z.strictObject({
  type: z.literal('mv.report.v1'),
  /** What kind of report: 'compliance', 'incident', 'drill', … */
  kind: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/),
  title: text(300),
  /** Ids the report is about: incident id, drill id, site ids… */
  subjects: z.array(text(200)).max(1000),
  period: z.strictObject({ from: time, to: time }).optional(),
  generatedAt: time,
  generatedBy: text(200).optional(),
  /** The overall verdict, when the report has one. */
  mark,
  sections: z.array(reportSection).max(200),
  sig: signature.optional(),
});

export type Report = z.infer<typeof report>;
export type ReportInput = z.input<typeof report>;
export type ReportSection = z.input<typeof reportSection>;
export type ReportTable = z.input<typeof reportTable>;
export type ReportFact = z.input<typeof reportFact>;
export const reportFormats = ['json', 'html', 'pdf'] as const;
export type ReportFormat = (typeof reportFormats)[number];

/** Validates `input` and signs it; throws MV_ERR_MESSAGE_INVALID naming the first bad member. */
export function signReport(input: ReportInput, key: SigningKey): Report {
  const r = report.safeParse({ ...input, sig: undefined });
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new MedvaultError(codes.MESSAGE_INVALID, `report: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return signMessage(r.data, key);
}

/**
 * Reads a signed report from a .json file or from the JSON embedded in a .html rendering and
 * checks its signature against `publicKey`. Throws MV_ERR_MESSAGE_INVALID (not a report) or
 * MV_ERR_SIGNATURE_INVALID (altered, unsigned, or signed by another key), naming the file.
 */
export function verifyReportFile(file: string, publicKey: KeyObject): Report {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MedvaultError(codes.NOT_FOUND, `${file}: cannot read the report`, { cause });
  }
  const embedded = /<script type="application\/json" id="mv-report">([\s\S]*?)<\/script>/.exec(raw);
  let value: unknown;
  try {
    value = JSON.parse(embedded ? embedded[1]! : raw);
  } catch (cause) {
    throw new MedvaultError(codes.MESSAGE_INVALID, `${file}: not a JSON report${embedded ? ' (embedded in HTML)' : ''}`, { cause });
  }
  const r = report.safeParse(value);
  if (!r.success) throw new MedvaultError(codes.MESSAGE_INVALID, `${file}: not an mv.report.v1: ${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`);
  try {
    verifyMessage(r.data, publicKey);
  } catch (err) {
    throw new MedvaultError(codes.SIGNATURE_INVALID, `${file}: ${(err as Error).message}`, { cause: err });
  }
  return r.data;
}

const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
const periodText = (r: Report) => (r.period ? `${iso(r.period.from)} to ${iso(r.period.to)}` : '');
const markLabel: Record<Mark, string> = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', info: 'INFO' };
const markColor: Record<Mark, string> = { pass: '#1a7f37', fail: '#c62828', warn: '#a15c00', info: '#455a64' };

/** Renders a signed report in one of the three forms. */
export async function renderReport(r: Report, format: ReportFormat): Promise<Buffer> {
  if (!r.sig) throw new MedvaultError(codes.SIGNATURE_INVALID, `report ${r.kind} ${r.subjects.join(',')}: not signed`);
  if (format === 'json') return Buffer.from(`${canonicalJson(r)}\n`);
  if (format === 'html') return Buffer.from(renderHtml(r));
  return renderPdf(r);
}

const esc = (s: string | number) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const badge = (m: Mark | undefined) => (m ? ` <span class="mark ${m}">${markLabel[m]}</span>` : '');

function renderHtml(r: Report): string {
  const head = [
    r.subjects.length ? `<tr><th>Subject</th><td>${esc(r.subjects.join(', '))}</td></tr>` : '',
    r.period ? `<tr><th>Period</th><td>${esc(periodText(r))}</td></tr>` : '',
    `<tr><th>Generated</th><td>${esc(iso(r.generatedAt))}${r.generatedBy ? ` by ${esc(r.generatedBy)}` : ''}</td></tr>`,
    r.mark ? `<tr><th>Result</th><td>${badge(r.mark)}</td></tr>` : '',
  ].join('');
  const sections = r.sections.map((s) => {
    const facts = s.facts.length
      ? `<table class="facts">${s.facts.map((f) => `<tr><th>${esc(f.label)}</th><td>${esc(f.value)}${badge(f.mark)}</td></tr>`).join('')}</table>`
      : '';
    const paras = s.paragraphs.map((p) => `<p>${esc(p)}</p>`).join('');
    const tables = s.tables.map((t) => `${t.title ? `<h3>${esc(t.title)}</h3>` : ''}${t.rows.length === 0 ? '<p class="none">none</p>' : ''}<table class="grid"${t.rows.length === 0 ? ' hidden' : ''}><thead><tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}${t.rows.some((x) => x.mark) ? '<th></th>' : ''}</tr></thead><tbody>${t.rows
      .map((row) => `<tr${row.mark ? ` class="${row.mark}"` : ''}>${row.cells.map((c) => `<td>${esc(c)}</td>`).join('')}${row.mark ? `<td>${badge(row.mark)}</td>` : ''}</tr>`)
      .join('')}</tbody></table>`).join('');
    return `<section><h2>${esc(s.heading)}${badge(s.mark)}</h2>${facts}${paras}${tables}</section>`;
  }).join('\n');
  // '<' escaped so the embedded JSON cannot close its script element.
  const json = canonicalJson(r).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>
body{font:14px/1.4 system-ui,Helvetica,Arial,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#111}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}h3{font-size:1em}
table{border-collapse:collapse;margin:.5em 0}th,td{text-align:left;vertical-align:top;padding:.2em .6em}
table.grid{width:100%;font-size:.9em}table.grid th,table.grid td{border:1px solid #ccc}table.grid thead th{background:#f2f2f2}
table.facts th{font-weight:600;padding-left:0}tr.fail td{background:#fdecea}
.mark{font-weight:700;font-size:.85em;padding:0 .4em;border-radius:3px;color:#fff}
.pass{background:${markColor.pass}}.fail{background:${markColor.fail}}.warn{background:${markColor.warn}}.info{background:${markColor.info}}
tr.fail,tr.pass,tr.warn,tr.info{background:none}
footer{margin-top:2em;font-size:.8em;color:#555;word-break:break-all}
@media print{body{margin:0;max-width:none}section{break-inside:avoid-page}thead{display:table-header-group}}
</style></head><body>
<h1>${esc(r.title)}</h1><table class="facts">${head}</table>
${sections}
<footer>Signed by the medvault controller, Ed25519 key ${esc(r.sig!.kid)}: ${esc(r.sig!.value)}.
Verify with <code>medvault-controller report verify FILE</code> (this file or its JSON form).</footer>
<script type="application/json" id="mv-report">${json}</script>
</body></html>
`;
}

/** Helvetica (WinAnsi) shows Latin-1 and a few typographic marks; anything else becomes '?'. */
const pdfText = (s: string | number) => String(s).replace(/[^\n\x20-\x7e\xa0-\xff–—‘’“”•…€]/g, '?');

function renderPdf(r: Report): Promise<Buffer> {
  const date = new Date(r.generatedAt);
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: 56, bottom: 56, left: 50, right: 50 },
    bufferPages: true,
    info: { Title: pdfText(r.title), Author: 'medvault controller', Subject: pdfText(r.subjects.join(', ')), CreationDate: date, ModDate: date },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  const json = Buffer.from(canonicalJson(r));
  doc.file(json, { name: 'report.json', type: 'application/json', description: 'the signed report (verify with medvault-controller report verify)', creationDate: date, modifiedDate: date });

  const left = doc.page.margins.left;
  const width = doc.page.width - left - doc.page.margins.right;
  const bottom = () => doc.page.height - doc.page.margins.bottom;
  const ensure = (h: number) => {
    if (doc.y + h > bottom()) doc.addPage();
  };
  const markText = (m: Mark | undefined, x: number, y: number) => {
    if (!m) return;
    const at = { x: doc.x, y: doc.y };
    doc.font('Helvetica-Bold').fontSize(9).fillColor(markColor[m]).text(markLabel[m], x, y, { lineBreak: false });
    doc.fillColor('black');
    doc.x = at.x;
    doc.y = at.y;
  };

  doc.font('Helvetica-Bold').fontSize(18).text(pdfText(r.title), left, doc.y, { width });
  doc.moveDown(0.4);
  const facts = (list: { label: string; value: string | number; mark?: Mark | undefined }[]) => {
    for (const f of list) {
      doc.font('Helvetica').fontSize(10);
      const h = doc.heightOfString(pdfText(f.value), { width: width - 210 });
      ensure(h + 2);
      const y = doc.y;
      doc.font('Helvetica-Bold').text(pdfText(f.label), left, y, { width: 160 });
      doc.font('Helvetica').text(pdfText(f.value), left + 165, y, { width: width - 210 });
      markText(f.mark, f.value === '' ? left + 165 : left + width - 35, y);
      doc.x = left;
      doc.y = Math.max(doc.y, y + h) + 2;
    }
  };
  facts([
    ...(r.subjects.length ? [{ label: 'Subject', value: r.subjects.join(', ') }] : []),
    ...(r.period ? [{ label: 'Period', value: periodText(r) }] : []),
    { label: 'Generated', value: `${iso(r.generatedAt)}${r.generatedBy ? ` by ${r.generatedBy}` : ''}` },
    ...(r.mark ? [{ label: 'Result', value: '', mark: r.mark }] : []),
  ]);

  for (const s of r.sections) {
    ensure(60);
    doc.moveDown(0.8);
    const y = doc.y;
    doc.font('Helvetica-Bold').fontSize(13).text(pdfText(s.heading), left, y, { width: width - 45 });
    markText(s.mark, left + width - 35, y + 2);
    doc.moveTo(left, doc.y + 1).lineTo(left + width, doc.y + 1).strokeColor('#999').lineWidth(0.5).stroke();
    doc.x = left;
    doc.moveDown(0.4);
    facts(s.facts);
    for (const p of s.paragraphs) {
      doc.font('Helvetica').fontSize(10);
      ensure(Math.min(doc.heightOfString(pdfText(p), { width }), 40));
      doc.text(pdfText(p), left, doc.y, { width });
      doc.moveDown(0.4);
    }
    for (const t of s.tables) pdfTable(doc, t, { left, width, bottom, markText });
  }

  // Footer on every page: signature key id and page numbers.
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const m = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    const y = doc.page.height - 36;
    doc.font('Helvetica').fontSize(7).fillColor('#555');
    doc.text(`Signed by the medvault controller, Ed25519 key ${r.sig!.kid}; the signed JSON is attached (report.json).`, left, y, { lineBreak: false });
    doc.text(`page ${i + 1} of ${range.count}`, left, y, { width, align: 'right', lineBreak: false });
    doc.page.margins.bottom = m;
  }
  doc.end();
  return done;
}

/** A grid table that breaks across pages and repeats its header. */
function pdfTable(
  doc: PDFKit.PDFDocument,
  t: z.infer<typeof reportTable>,
  g: { left: number; width: number; bottom: () => number; markText: (m: Mark | undefined, x: number, y: number) => void },
): void {
  const marked = t.rows.some((x) => x.mark);
  const avail = g.width - (marked ? 36 : 0);
  // Column widths follow the longest cell (capped), at least 40 points each.
  const weight = t.columns.map((c, i) => Math.min(40, Math.max(c.length, ...t.rows.map((x) => pdfText(x.cells[i] ?? '').length))) + 4);
  const total = weight.reduce((a, b) => a + b, 0);
  const widths = weight.map((w) => Math.max(40, (w / total) * avail));
  const scale = avail / widths.reduce((a, b) => a + b, 0);
  for (let i = 0; i < widths.length; i++) widths[i]! *= scale;
  const pad = 3;
  const rowHeight = (cells: (string | number)[], font: string) => {
    doc.font(font).fontSize(8);
    return Math.max(...widths.map((w, i) => doc.heightOfString(pdfText(cells[i] ?? ''), { width: w - 2 * pad }))) + 2 * pad;
  };
  const drawRow = (cells: (string | number)[], font: string, fill?: string) => {
    const h = rowHeight(cells, font);
    const y = doc.y;
    let x = g.left;
    for (let i = 0; i < widths.length; i++) {
      if (fill) doc.rect(x, y, widths[i]!, h).fillColor(fill).fill();
      doc.rect(x, y, widths[i]!, h).strokeColor('#bbb').lineWidth(0.5).stroke();
      doc.fillColor('black').font(font).fontSize(8).text(pdfText(cells[i] ?? ''), x + pad, y + pad, { width: widths[i]! - 2 * pad });
      x += widths[i]!;
    }
    doc.x = g.left;
    doc.y = y + h;
    return { y, h };
  };
  const header = () => drawRow(t.columns, 'Helvetica-Bold', '#eeeeee');
  doc.moveDown(0.3);
  if (t.title) {
    if (doc.y + 40 > g.bottom()) doc.addPage();
    doc.font('Helvetica-Bold').fontSize(10).text(pdfText(t.title), g.left, doc.y);
    doc.moveDown(0.2);
  }
  if (t.rows.length === 0) {
    doc.font('Helvetica').fontSize(9).fillColor('#555').text('none', g.left, doc.y).fillColor('black');
    doc.moveDown(0.6);
    return;
  }
  if (doc.y + 2 * rowHeight(t.columns, 'Helvetica-Bold') > g.bottom()) doc.addPage();
  header();
  for (const row of t.rows) {
    if (doc.y + rowHeight(row.cells, 'Helvetica') > g.bottom()) {
      doc.addPage();
      header();
    }
    const { y, h } = drawRow(row.cells, 'Helvetica', row.mark === 'fail' ? '#fdecea' : undefined);
    g.markText(row.mark, g.left + avail + 4, y + h / 2 - 4);
    doc.y = y + h;
  }
  doc.x = g.left;
  doc.moveDown(0.6);
}

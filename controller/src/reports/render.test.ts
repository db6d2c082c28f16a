import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey, isError, codes } from '@medvault/protocol';
import { renderReport, signReport, verifyReportFile, type ReportInput } from './render.js';

const dir = mkdtempSync(join(tmpdir(), 'mv-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const key = generateSigningKey();
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

const sample: ReportInput = {
  type: 'mv.report.v1',
  kind: 'drill',
  title: 'Disaster-recovery drill clinic-a/records',
  subjects: ['clinic-a', '5f0c1a2e-9d3b-4c1e-8f6a-2b7d9e0a1c3f'],
  period: { from: Date.UTC(2025, 0, 1), to: Date.UTC(2025, 2, 31, 23, 59, 59) },
  generatedAt: Date.UTC(2025, 3, 1, 8, 30),
  generatedBy: 'tess',
  mark: 'fail',
  sections: [
    {
      heading: 'Recovery objectives',
      mark: 'pass',
      facts: [
        { label: 'RTO measured', value: '47.3 s', mark: 'pass' },
        { label: 'RPO measured', value: '312 s', mark: 'pass' },
        { label: 'Files verified', value: 12345 },
      ],
      paragraphs: ['Ünïcode is Latin-1 here; ✓ and 漢字 are not <script>alert(1)</script>.'],
    },
    {
      heading: 'Runs',
      mark: 'fail',
      tables: [{
        title: 'Per source',
        columns: ['source', 'files', 'bytes', 'seconds'],
        rows: [
          { cells: ['local', 12345, 987654321, '47.3'], mark: 'pass' },
          { cells: ['offsite', 12340, 987000000, '93.1'], mark: 'fail' },
          ...Array.from({ length: 120 }, (_, i) => ({ cells: [`filler-${i}`, i, i * 1000, 'x'] })),
        ],
      }],
    },
  ],
};

describe('report renderer', () => {
  const r = signReport(sample, key);

  it('signs the canonical JSON; JSON and HTML forms verify, altered or foreign ones do not', async () => {
    const json = join(dir, 'r.json');
    const html = join(dir, 'r.html');
    writeFileSync(json, await renderReport(r, 'json'));
    writeFileSync(html, await renderReport(r, 'html'));
    expect(verifyReportFile(json, key.publicKey).title).toBe(sample.title);
    expect(verifyReportFile(html, key.publicKey).sections[0]!.facts[0]!.value).toBe('47.3 s');

    const altered = join(dir, 'altered.json');
    writeFileSync(altered, readFileSync(json, 'utf8').replace('47.3 s', '7.3 s'));
    expect(() => verifyReportFile(altered, key.publicKey)).toThrow(/altered\.json: signature does not verify/);
    expect(() => verifyReportFile(json, generateSigningKey().publicKey)).toThrow(/r\.json: signed by key/);
    const notReport = join(dir, 'not.json');
    writeFileSync(notReport, '{"type":"mv.alert.v1"}');
    try {
      verifyReportFile(notReport, key.publicKey);
      expect.unreachable();
    } catch (err) {
      expect(isError(err, codes.MESSAGE_INVALID)).toBe(true);
      expect((err as Error).message).toMatch(/not\.json: not an mv\.report\.v1/);
    }
    expect(() => verifyReportFile(join(dir, 'missing.json'), key.publicKey)).toThrow(/missing\.json: cannot read/);
  });

  it('refuses an invalid report naming the member', () => {
    expect(() => signReport({ ...sample, kind: 'Bad Kind' }, key)).toThrow(/report: kind:/);
  });

  it('HTML is self-contained and escapes text (no script from report content)', async () => {
    const html = (await renderReport(r, 'html')).toString();
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/\b(src|href)=/);
    expect(html).toContain(r.sig!.kid);
    expect(html).toContain('@media print');
  });

  it('PDF: the same bytes twice, key figures in its text, several pages, the signed JSON attached, a PNG', async () => {
    const pdf = await renderReport(r, 'pdf');
    expect((await renderReport(r, 'pdf')).equals(pdf)).toBe(true);
    const file = join(dir, 'r.pdf');
    writeFileSync(file, pdf);
    if (process.env.MV_KEEP_REPORT) writeFileSync(`${process.env.MV_KEEP_REPORT}.pdf`, pdf);
    const txt = run('pdftotext', ['-layout', file, '-']);
    for (const s of ['Disaster-recovery drill clinic-a/records', 'RTO measured', '47.3 s', '12345', '987654321', 'offsite', 'FAIL', 'PASS', 'filler-119', r.sig!.kid, '2025-01-01T00:00:00Z to 2025-03-31T23:59:59Z']) {
      expect(txt, s).toContain(s);
    }
    expect(txt).toContain('Ünïcode');
    expect(txt).toContain('? and ?? are not');
    const pages = Number(/Pages:\s+(\d+)/.exec(run('pdfinfo', [file]))![1]);
    expect(pages).toBeGreaterThan(1);
    expect(txt.match(/page \d+ of (\d+)/)![1]).toBe(String(pages));
    // The attachment is the signed JSON.
    run('pdfdetach', ['-saveall', '-o', dir, file]);
    expect(verifyReportFile(join(dir, 'report.json'), key.publicKey).sig).toEqual(r.sig);
    run('pdftoppm', ['-png', '-r', '60', '-f', '1', '-l', '1', file, join(dir, 'page')]);
    const png = readFileSync(join(dir, 'page-1.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(statSync(join(dir, 'page-1.png')).size).toBeGreaterThan(5000);
    if (process.env.MV_KEEP_REPORT) writeFileSync(`${process.env.MV_KEEP_REPORT}.png`, png);
  });

  it('refuses to render an unsigned report', async () => {
    const { sig: _s, ...unsigned } = r;
    await expect(renderReport(unsigned, 'pdf')).rejects.toThrow(/not signed/);
  });
});

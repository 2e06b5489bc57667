/**
 * The chart for docs/benchmarks.svg, written by hand (no dependencies). Two panels of
 * horizontal bars on log scales:
 *   1. speed relative to the ws→ws baseline (1 = a WebSocket with no proxy), where for
 *      latencies the ratio is inverted so that longer bars are always better;
 *   2. proxy memory per idle session (shorter is better).
 */
import type { Results } from './run.js';
import { SUBJECT_LABEL, type SubjectName } from './metrics.js';
import { fmt, median, medianRatio } from './stats.js';

const COLORS: Record<SubjectName, string> = {
  tsockify: '#2563eb',
  websockify: '#ea580c',
  tcp: '#cbd5e1',
  ws: '#111827',
  'tcp-relay': '#94a3b8',
  'ws-relay': '#0d9488',
  'tsockify-w2': '#60a5fa',
};

interface Bar { subject: SubjectName; value: number; text: string }
interface Row { label: string; bars: Bar[]; marker?: { value: number; text: string } }

/** Bars of a row, top to bottom: the contenders, then the references nearest to them. */
const BAR_ORDER = ['tsockify', 'websockify', 'ws-relay', 'tcp-relay', 'tcp'] as const;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const WIDTH = 960;
const LABEL_W = 230;
const PLOT_W = 560;
const BAR_H = 13;
const BAR_GAP = 3;
const ROW_GAP = 14;

function panel(y0: number, title: string, subtitle: string, rows: Row[], lo: number, hi: number, ticks: number[], refLine?: number): { svg: string; height: number } {
  const x = (v: number): number => LABEL_W + (Math.log10(Math.min(hi, Math.max(lo, v))) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * PLOT_W;
  const parts: string[] = [];
  parts.push(`<text x="16" y="${y0 + 18}" class="title">${esc(title)}</text>`);
  parts.push(`<text x="16" y="${y0 + 36}" class="sub">${esc(subtitle)}</text>`);
  let y = y0 + 52;
  const top = y;
  for (const row of rows) {
    const h = row.bars.length * (BAR_H + BAR_GAP) - BAR_GAP;
    parts.push(`<text x="${LABEL_W - 10}" y="${y + h / 2 + 4}" class="label" text-anchor="end">${esc(row.label)}</text>`);
    for (const b of row.bars) {
      if (Number.isFinite(b.value) && b.value > 0) {
        const w = Math.max(1, x(b.value) - LABEL_W);
        parts.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[b.subject]}" rx="2"><title>${esc(`${SUBJECT_LABEL[b.subject]}: ${b.text}`)}</title></rect>`);
        parts.push(`<text x="${(LABEL_W + w + 5).toFixed(1)}" y="${y + BAR_H - 2}" class="val">${esc(b.text)}</text>`);
      } else {
        parts.push(`<text x="${LABEL_W + 5}" y="${y + BAR_H - 2}" class="val">${esc(b.text)}</text>`);
      }
      y += BAR_H + BAR_GAP;
    }
    if (row.marker && Number.isFinite(row.marker.value)) {
      const mx = x(row.marker.value);
      parts.push(`<line x1="${mx.toFixed(1)}" x2="${mx.toFixed(1)}" y1="${y - h - BAR_GAP - 3}" y2="${y}" class="target"><title>${esc(row.marker.text)}</title></line>`);
    }
    y += ROW_GAP;
  }
  const bottom = y - ROW_GAP + 4;
  // Grid and reference line go underneath the bars and their labels.
  const under: string[] = [];
  for (const t of ticks) {
    const tx = x(t);
    under.push(`<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${top - 4}" y2="${bottom}" class="grid"/>`);
    under.push(`<text x="${tx.toFixed(1)}" y="${bottom + 14}" class="tick" text-anchor="middle">${esc(fmt(t))}</text>`);
  }
  if (refLine !== undefined) {
    const rx = x(refLine);
    under.push(`<line x1="${rx.toFixed(1)}" x2="${rx.toFixed(1)}" y1="${top - 4}" y2="${bottom}" class="ref"/>`);
  }
  return { svg: [...parts.slice(0, 2), ...under, ...parts.slice(2)].join('\n'), height: bottom + 24 - y0 };
}

function speedRows(r: Results): Row[] {
  const s = (m: string, subj: SubjectName): Array<number | undefined> => r.values[m]?.[subj] ?? [];
  const rel = (m: string, subj: SubjectName, lowerIsBetter: boolean): number =>
    lowerIsBetter ? medianRatio(s(m, 'ws'), s(m, subj)) : medianRatio(s(m, subj), s(m, 'ws'));
  const defs: Array<{ m: string; label: string; lower: boolean; target?: number; targetText?: string }> = [
    { m: 'down', label: 'downstream MiB/s', lower: false, target: 0.8, targetText: 'target: ≥ 0.8 × ws→ws' },
    { m: 'up', label: 'upstream MiB/s', lower: false, target: 0.8, targetText: 'target: ≥ 0.8 × ws→ws' },
    { m: 'rtt.p50', label: 'round trip p50 (inverted)', lower: true },
    { m: 'rtt.p99', label: 'round trip p99 (inverted)', lower: true },
    { m: 'seq.rate', label: 'sessions/s sequential', lower: false, target: 0.7, targetText: 'target: ≥ 0.7 × ws→ws' },
    { m: 'par.rate', label: `sessions/s ${r.parallel} parallel`, lower: false, target: 0.7, targetText: 'target: ≥ 0.7 × ws→ws' },
  ];
  const rows: Row[] = [];
  for (const d of defs) {
    if (!r.values[d.m]) continue;
    const bars: Bar[] = [];
    for (const subj of BAR_ORDER) {
      if (!r.subjects.includes(subj) || !r.values[d.m]?.[subj]) continue;
      const v = rel(d.m, subj, d.lower);
      bars.push({ subject: subj, value: v, text: Number.isFinite(v) ? `${SUBJECT_LABEL[subj]} ${fmt(v)}×` : `${SUBJECT_LABEL[subj]}: not measured` });
    }
    let target = d.target;
    let targetText = d.targetText;
    if (d.m === 'rtt.p50') {
      // ≤ baseline + 20 µs, as a ratio to the baseline of this run.
      const base = median((s('rtt.p50', 'ws')).filter((x): x is number => x !== undefined));
      target = base / (base + 20);
      targetText = 'target: ≤ ws→ws + 20 µs';
    }
    rows.push({ label: d.label, bars, ...(target !== undefined ? { marker: { value: target, text: targetText ?? '' } } : {}) });
  }
  return rows;
}

function memoryRows(r: Results): Row[] {
  const rows: Row[] = [];
  for (const n of r.idleCounts) {
    const m = `idle.${n}.kib`;
    const bars: Bar[] = [];
    // The baselines' figure is the endpoint's, not a relay's: only relays are drawn here.
    for (const subj of ['tsockify', 'websockify', 'ws-relay'] as const) {
      if (!r.subjects.includes(subj)) continue;
      const v = median((r.values[m]?.[subj] ?? []).filter((x): x is number => x !== undefined));
      const held = median(r.idle.filter((d) => d.subject === subj && d.asked === n && d.skipped === undefined).map((d) => d.echoing));
      const heldText = Number.isFinite(held) ? ` (${Math.round(held).toLocaleString('en-US')} held)` : '';
      const reached = Math.max(0, ...r.idle.filter((d) => d.subject === subj && d.skipped === undefined).map((d) => d.echoing));
      bars.push({
        subject: subj,
        value: v,
        text: Number.isFinite(v) ? `${SUBJECT_LABEL[subj]} ${fmt(v)} KiB${heldText}` : `${SUBJECT_LABEL[subj]}: not attempted (held at most ${reached.toLocaleString('en-US')} in a smaller tier)`,
      });
    }
    rows.push({ label: `idle sessions, ${n.toLocaleString('en-US')} asked`, bars, ...(n === 10_000 ? { marker: { value: 12, text: 'target: ≤ 12 KiB' } } : {}) });
  }
  return rows;
}

export function renderSvg(r: Results): string {
  const body: string[] = [];
  let y = 0;
  const speed = speedRows(r);
  if (speed.length > 0) {
    const p = panel(y, 'tsockify vs websockify, relative to a WebSocket with no proxy (ws→ws = 1)',
      `longer is better; latencies inverted (baseline ÷ subject); red ticks: the issue’s targets; log scale; median of ${r.rounds} round${r.rounds === 1 ? '' : 's'}, ${r.machine.cores} cores`,
      speed, 0.01, 4, [0.01, 0.03, 0.1, 0.3, 1, 3], 1);
    body.push(p.svg);
    y += p.height + 10;
  }
  const mem = r.scenarios.includes('idle') ? memoryRows(r) : [];
  if (mem.length > 0) {
    const p = panel(y, 'Proxy memory per idle session (PSS, all proxy processes)', 'shorter is better; log scale, KiB; red tick: the issue’s 12 KiB target', mem, 1, 100_000, [1, 10, 100, 1000, 10000, 100000]);
    body.push(p.svg);
    y += p.height;
  }
  const legendY = y + 8;
  const legendText: Partial<Record<SubjectName, string>> = {
    tcp: 'raw TCP, no relay (machine limit)',
    'tcp-relay': 'TCP relay in Node (one hop)',
    'ws-relay': 'ws relay in Node (minimal)',
  };
  // Entries laid out one after the other by an estimate of their text's width (12 px labels).
  let legendX = 16;
  const legend = BAR_ORDER.filter((s) => r.subjects.includes(s)).map((s) => {
    const text = legendText[s] ?? SUBJECT_LABEL[s];
    const x = legendX;
    legendX += 18 + Math.ceil(text.length * 6.6) + 24;
    return `<rect x="${x}" y="${legendY}" width="12" height="12" fill="${COLORS[s]}"/><text x="${x + 18}" y="${legendY + 11}" class="label">${esc(text)}</text>`;
  }).join('');
  const height = legendY + 28;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>
.title { font-size: 15px; font-weight: 600; fill: #111827 }
.sub { font-size: 11.5px; fill: #4b5563 }
.label { font-size: 12px; fill: #111827 }
.val { font-size: 11px; fill: #374151; paint-order: stroke; stroke: #ffffff; stroke-width: 3px; stroke-linejoin: round }
.tick { font-size: 10.5px; fill: #6b7280 }
.grid { stroke: #e5e7eb; stroke-width: 1 }
.ref { stroke: #111827; stroke-width: 1.5; stroke-dasharray: 4 3 }
.target { stroke: #dc2626; stroke-width: 2.5 }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
${body.join('\n')}
${legend}
</svg>
`;
}

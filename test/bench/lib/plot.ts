// The fleetscale curve as an SVG: peak RSS and cold start time against the number of
// containers, one panel each. Written by hand (a few dozen elements) so the bench needs no
// plotting dependency; a pure function, so a unit test can check what it draws.

export interface CurvePoint {
  containers: number;
  peakRssMb: number;
  /** Spawn → every state right; NaN when the cold start did not converge (no point drawn). */
  convergedSeconds: number;
}

export interface CurveMeta {
  title: string;
  /** YYYY-MM-DD of the run. */
  date: string;
  /** e.g. "AMD EPYC, 2 cores, etcd 3.4.23". */
  machine: string;
  /** A second line under the title, e.g. the fleet's shape. */
  subtitle?: string;
  /** Dashed target lines, drawn when given. */
  targets?: { peakRssMb?: number; convergedSeconds?: number; label?: string };
}

const W = 960;
const H = 420;
const PANEL_W = W / 2;
const MARGIN = { left: 72, right: 24, top: 78, bottom: 62 };

/** Escape for XML text and attribute values (machine names may hold anything). */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 0 and round steps (1, 2, 2.5 or 5 × 10^k) up to at least `max`, about `count` of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const n = Math.max(1, Math.ceil(max / step - 1e-9));
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/** 250000 → "250k", 1500000 → "1.5M". */
export function countLabel(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(4))}M`;
  if (v >= 1e3) return `${Number((v / 1e3).toPrecision(4))}k`;
  return String(v);
}

const num = (v: number): string => v.toFixed(1);

interface Panel {
  id: string;
  yLabel: string;
  value: (p: CurvePoint) => number;
  pointLabel: (v: number) => string;
  /** Written above the x axis where a point has no value. */
  missingLabel: string;
  target?: number;
}

function panelSvg(index: number, panel: Panel, points: CurvePoint[], xTicks: number[], meta: CurveMeta): string[] {
  const x0 = index * PANEL_W + MARGIN.left;
  const x1 = (index + 1) * PANEL_W - MARGIN.right;
  const y0 = H - MARGIN.bottom; // bottom of the plot area
  const y1 = MARGIN.top;
  const xMax = xTicks.at(-1)!;
  const values = points.map(panel.value).filter(Number.isFinite);
  const yTicks = niceTicks(Math.max(0, ...values, panel.target ?? 0) * 1.1);
  const yMax = yTicks.at(-1)!;
  const sx = (v: number): number => x0 + (v / xMax) * (x1 - x0);
  const sy = (v: number): number => y0 - (v / yMax) * (y0 - y1);
  const out: string[] = [`<g class="panel" id="${panel.id}">`];
  out.push(`<rect x="${num(x0)}" y="${num(y1)}" width="${num(x1 - x0)}" height="${num(y0 - y1)}" fill="none" stroke="#999"/>`);
  for (const t of yTicks) {
    out.push(`<line class="grid" x1="${num(x0)}" x2="${num(x1)}" y1="${num(sy(t))}" y2="${num(sy(t))}" stroke="#eee"/>`);
    out.push(`<line x1="${num(x0 - 5)}" x2="${num(x0)}" y1="${num(sy(t))}" y2="${num(sy(t))}" stroke="#333"/>`);
    out.push(`<text class="tick" x="${num(x0 - 8)}" y="${num(sy(t) + 4)}" text-anchor="end">${xmlEscape(String(t))}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<line x1="${num(sx(t))}" x2="${num(sx(t))}" y1="${num(y0)}" y2="${num(y0 + 5)}" stroke="#333"/>`);
    out.push(`<text class="tick" x="${num(sx(t))}" y="${num(y0 + 19)}" text-anchor="middle">${xmlEscape(countLabel(t))}</text>`);
  }
  out.push(`<text class="axis-label" x="${num((x0 + x1) / 2)}" y="${num(y0 + 42)}" text-anchor="middle">containers</text>`);
  const ly = (y0 + y1) / 2;
  const lx = x0 - 52;
  out.push(`<text class="axis-label" x="${num(lx)}" y="${num(ly)}" text-anchor="middle" transform="rotate(-90 ${num(lx)} ${num(ly)})">${xmlEscape(panel.yLabel)}</text>`);
  if (panel.target !== undefined) {
    const ty = sy(panel.target);
    out.push(`<line class="target" x1="${num(x0)}" x2="${num(x1)}" y1="${num(ty)}" y2="${num(ty)}" stroke="#c33" stroke-dasharray="6 4"/>`);
    const label = `target ${panel.pointLabel(panel.target)}${meta.targets?.label ? ` ${meta.targets.label}` : ''}`;
    out.push(`<text class="target-label" x="${num(x1 - 4)}" y="${num(ty - 5)}" text-anchor="end" fill="#c33">${xmlEscape(label)}</text>`);
  }
  const drawn = points.filter((p) => Number.isFinite(panel.value(p)));
  if (drawn.length > 1) {
    const d = drawn.map((p) => `${num(sx(p.containers))},${num(sy(panel.value(p)))}`).join(' ');
    out.push(`<polyline points="${d}" fill="none" stroke="#36c" stroke-width="1.5"/>`);
  }
  for (const p of drawn) {
    const cx = sx(p.containers);
    const cy = sy(panel.value(p));
    out.push(`<circle class="point" data-panel="${panel.id}" data-containers="${p.containers}" cx="${num(cx)}" cy="${num(cy)}" r="4" fill="#36c"/>`);
    out.push(`<text class="point-label" x="${num(cx)}" y="${num(cy - 9)}" text-anchor="middle">${xmlEscape(panel.pointLabel(panel.value(p)))}</text>`);
  }
  for (const p of points.filter((q) => !Number.isFinite(panel.value(q)))) {
    out.push(`<text class="missing" x="${num(sx(p.containers))}" y="${num(y0 - 8)}" text-anchor="middle" fill="#c33">${xmlEscape(panel.missingLabel)}</text>`);
  }
  out.push('</g>');
  return out;
}

/** Both panels side by side, points sorted by containers, with a title naming the date and machine. */
export function renderCurveSvg(points: CurvePoint[], meta: CurveMeta): string {
  const sorted = [...points].sort((a, b) => a.containers - b.containers);
  const xTicks = niceTicks(Math.max(1, ...sorted.map((p) => p.containers)));
  const panels: Panel[] = [
    { id: 'rss', yLabel: 'peak RSS (MB)', value: (p) => p.peakRssMb, pointLabel: (v) => `${v.toFixed(0)} MB`, missingLabel: 'no figure', target: meta.targets?.peakRssMb },
    { id: 'converged', yLabel: 'cold start to converged (s)', value: (p) => p.convergedSeconds, pointLabel: (v) => `${v.toFixed(1)} s`, missingLabel: 'not converged', target: meta.targets?.convergedSeconds },
  ];
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text class="title" x="${W / 2}" y="26" text-anchor="middle" font-size="16">${xmlEscape(`${meta.title} — ${meta.date}, ${meta.machine}`)}</text>`,
  ];
  if (meta.subtitle) lines.push(`<text class="subtitle" x="${W / 2}" y="46" text-anchor="middle" fill="#555">${xmlEscape(meta.subtitle)}</text>`);
  panels.forEach((panel, i) => lines.push(...panelSvg(i, panel, sorted, xTicks, meta)));
  lines.push('</svg>');
  return lines.join('\n') + '\n';
}

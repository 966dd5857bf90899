// The fleetscale plot (test/bench/lib/plot.ts): well-formed, one marker per value, axes
// labelled, containers mapped to x in order. Parsed with a small tag checker (no XML parser
// among the dependencies).
import test from 'ava';
import { countLabel, niceTicks, renderCurveSvg, type CurvePoint } from './lib/plot.js';

const META = { title: 'statemanager at fleet scale', date: '2026-12-02', machine: 'AMD EPYC & co <2 cores>', subtitle: 'models = containers / 2' };

/** Balanced tags, quoted attributes, no stray '<' or '&' in text; returns the root's name. */
function checkXml(xml: string): string {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let root = '';
  let pos = 0;
  for (const m of body.matchAll(/<[^>]*>/g)) {
    const text = body.slice(pos, m.index);
    if (/<|&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`bad text: ${text}`);
    pos = m.index + m[0].length;
    const tag = m[0];
    if (tag.startsWith('</')) {
      const name = tag.slice(2, -1).trim();
      if (stack.pop() !== name) throw new Error(`unbalanced ${tag}`);
      continue;
    }
    const open = /^<([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>$/.exec(tag);
    if (!open) throw new Error(`bad tag: ${tag}`);
    if (stack.length === 0) {
      if (root) throw new Error('more than one root element');
      root = open[1]!;
    }
    if (open[3] !== '/') stack.push(open[1]!);
  }
  if (stack.length > 0) throw new Error(`unclosed: ${stack.join(', ')}`);
  if (body.slice(pos).trim() !== '') throw new Error('text after the root element');
  return root;
}

function circles(svg: string, panel: string): { containers: number; cx: number; cy: number }[] {
  return [...svg.matchAll(/<circle class="point" data-panel="([^"]+)" data-containers="(\d+)" cx="([\d.-]+)" cy="([\d.-]+)"/g)]
    .filter((m) => m[1] === panel)
    .map((m) => ({ containers: Number(m[2]), cx: Number(m[3]), cy: Number(m[4]) }));
}

// Deliberately not in order: the renderer sorts.
const POINTS: CurvePoint[] = [
  { containers: 250_000, peakRssMb: 900, convergedSeconds: 40 },
  { containers: 100_000, peakRssMb: 420, convergedSeconds: 16.5 },
  { containers: 500_000, peakRssMb: 1800, convergedSeconds: 95 },
];

test('the SVG is well formed, with one circle per point in each panel', (t) => {
  const svg = renderCurveSvg(POINTS, { ...META, targets: { peakRssMb: 250, convergedSeconds: 5, label: 'at 100k' } });
  t.is(checkXml(svg), 'svg');
  t.is(circles(svg, 'rss').length, POINTS.length);
  t.is(circles(svg, 'converged').length, POINTS.length);
  t.is((svg.match(/<circle /g) ?? []).length, 2 * POINTS.length);
});

test('axes are labelled, points carry their values, the title names date and machine', (t) => {
  const svg = renderCurveSvg(POINTS, META);
  t.true(svg.includes('>containers</text>'));
  t.true(svg.includes('>peak RSS (MB)</text>'));
  t.true(svg.includes('>cold start to converged (s)</text>'));
  for (const label of ['420 MB', '1800 MB', '16.5 s', '95.0 s', '100k', '500k']) t.true(svg.includes(`>${label}</text>`), label);
  t.true(svg.includes('2026-12-02'));
  t.true(svg.includes('AMD EPYC &amp; co &lt;2 cores&gt;'));
});

test('containers map to x monotonically, values to y (higher value, smaller y)', (t) => {
  const svg = renderCurveSvg(POINTS, META);
  for (const panel of ['rss', 'converged']) {
    const cs = circles(svg, panel).sort((a, b) => a.containers - b.containers);
    for (let i = 1; i < cs.length; i++) {
      t.true(cs[i]!.cx > cs[i - 1]!.cx, `${panel}: x grows with containers`);
      t.true(cs[i]!.cy < cs[i - 1]!.cy, `${panel}: y grows upward with the value`);
    }
    // Proportional: x is linear in containers from 0.
    const [a, b, c] = cs;
    t.true(Math.abs((c!.cx - a!.cx) / (b!.cx - a!.cx) - (500 - 100) / (250 - 100)) < 0.01);
  }
});

test('a cold start that did not converge draws no point in the time panel', (t) => {
  const svg = renderCurveSvg([...POINTS, { containers: 750_000, peakRssMb: 2500, convergedSeconds: NaN }], META);
  t.is(checkXml(svg), 'svg');
  t.is(circles(svg, 'rss').length, 4);
  t.is(circles(svg, 'converged').length, 3);
  t.true(svg.includes('>not converged</text>'));
  t.false(svg.includes('NaN'));
});

test('ticks are round and cover the range', (t) => {
  t.deepEqual(niceTicks(500_000), [0, 100_000, 200_000, 300_000, 400_000, 500_000]);
  t.deepEqual(niceTicks(6000), [0, 2000, 4000, 6000]);
  t.true(niceTicks(1.23).at(-1)! >= 1.23);
  t.deepEqual(niceTicks(0), [0, 1]);
  t.is(countLabel(250_000), '250k');
  t.is(countLabel(1_500_000), '1.5M');
  t.is(countLabel(800), '800');
});

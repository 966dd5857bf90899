// The layout rules (docs/architecture.md), checked on the sources: controller/ imports only
// itself, domain/ only itself, reconcilers/ never src/, src/ keeps at most six loose files at
// its top, and no module imports itself back through others.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';

const ROOT = new URL('..', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const rel = join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) return rel.endsWith('generated') ? [] : sources(rel);
    return rel.endsWith('.ts') ? [rel] : [];
  });
}

/** Project-relative paths of the modules a file imports (type-only imports included). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
    out.push(relative(ROOT, resolve(dirname(join(ROOT, file)), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return out;
}

const files = [...sources('controller'), ...sources('domain'), ...sources('reconcilers'), ...sources('src')];
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('controller/ imports only controller/', (t) => {
  const bad = [...graph].flatMap(([f, deps]) => (f.startsWith('controller/') ? deps.filter((d) => !d.startsWith('controller/')).map((d) => `${f} → ${d}`) : []));
  t.deepEqual(bad, []);
});

test('domain/ imports only domain/ (pure rules and decoders: no etcd, gRPC or controller)', (t) => {
  const bad = [...graph].flatMap(([f, deps]) => (f.startsWith('domain/') ? deps.filter((d) => !d.startsWith('domain/')).map((d) => `${f} → ${d}`) : []));
  t.deepEqual(bad, []);
  const packages = [...graph.keys()]
    .filter((f) => f.startsWith('domain/'))
    .flatMap((f) => [...readFileSync(join(ROOT, f), 'utf8').matchAll(/^\s*import\s[^;]*?from\s+'([^.][^']*)'/gms)].map((m) => `${f} → ${m[1]}`))
    .filter((x) => !x.endsWith('→ yaml'));
  t.deepEqual(packages, [], 'domain/ may use the YAML parser and nothing else from outside');
});

test('src/ keeps at most six loose files at its top (the rest in folders by concern)', (t) => {
  const loose = readdirSync(join(ROOT, 'src')).filter((n) => n.endsWith('.ts'));
  t.true(loose.length <= 6, loose.join(', '));
});

test('reconcilers/ never imports src/', (t) => {
  const bad = [...graph].flatMap(([f, deps]) => (f.startsWith('reconcilers/') ? deps.filter((d) => d.startsWith('src/')).map((d) => `${f} → ${d}`) : []));
  t.deepEqual(bad, []);
});

test('no import cycles in controller/, domain/, reconcilers/ and src/', (t) => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (f: string): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'open');
    path.push(f);
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d);
    path.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  t.deepEqual(cycles, []);
});

test('the checks see the imports (the graph is not empty)', (t) => {
  t.true(files.length > 50);
  t.true((graph.get('src/app.ts') ?? []).includes('controller/manager.ts'));
});

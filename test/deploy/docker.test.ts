// deploy/docker/Dockerfile and .dockerignore, checked statically (no Docker engine here):
// multi-stage, on the Node.js major pinned in package.json (24), production dependencies only, compiled
// JavaScript and the .proto files (src/proto) in the runtime image, non-root, no HEALTHCHECK, and a build
// context that holds what the build needs.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './_support.js';

interface Instruction {
  op: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: { text: string; line: number }[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (buf === '' && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (buf !== '' && trimmed.startsWith('#')) return; // comment inside a continuation
    if (buf === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      buf += `${trimmed.slice(0, -1)} `;
      return;
    }
    buf += trimmed;
    logical.push({ text: buf, line: start });
    buf = '';
  });
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: l, line } of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l);
    if (!m) continue;
    const op = (m[1] ?? '').toUpperCase();
    const rest = m[2] ?? '';
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=', 2);
      if (k) args.set(k.trim(), (v ?? '').trim());
      continue;
    }
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      const image = (f?.[1] ?? '').replace(/\$\{?(\w+)\}?/g, (_, n: string) => args.get(n) ?? `<unset ${n}>`);
      stages.push({ image, name: f?.[2] ?? String(stages.length), instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) throw new Error(`line ${line}: ${op} before FROM`);
    stage.instructions.push({ op, args: rest, line });
  }
  return { args, stages };
}

function copyParts(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths[paths.length - 1] ?? '' };
}

const dockerfile = readFileSync(join(repoRoot, 'deploy/docker/Dockerfile'), 'utf8');
const { stages } = parseDockerfile(dockerfile);
const final = stages[stages.length - 1];
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  engines?: { node?: string };
  devDependencies?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};
// The Node.js the project runs on: the npm package "node" (the official binary), pinned exactly.
const pinnedNode = pkg.devDependencies?.node ?? '';
const pinnedMajor = Number(pinnedNode.split('.')[0]);

test('package.json pins one supported Node.js LTS (24), and npm run / npx run it', (t) => {
  t.regex(pinnedNode, /^\d+\.\d+\.\d+$/, 'devDependencies.node is an exact version (the lock file holds the same)');
  t.is(pinnedMajor, 24, 'Node.js 24 LTS (supported until 2028-04); Node 20 reached end of life on 2026-04-30');
  t.is(pkg.engines?.node, `>=${pinnedMajor}`, 'engines names the pinned major');
  t.true(pkg.allowScripts?.node, "the node package's preinstall (which fetches the binary) is allowed");
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  t.is(lock.packages['node_modules/node']?.version, pinnedNode, 'package-lock.json pins the same version');
  // npm run / npx / npm test put node_modules/.bin first on PATH, so ava and its workers run the
  // pinned binary (the workers are forked with process.execPath). Run some other way (the
  // ava binary under the system node, say), it is only reported.
  if (process.env.npm_command) t.is(process.version, `v${pinnedNode}`, `run by npm ${process.env.npm_command}: the tests run the pinned node (${process.execPath})`);
  else t.log(`not run by npm: this worker runs ${process.version} (${process.execPath})`);
});

test('multi-stage build on images of the pinned Node.js major', (t) => {
  t.true(stages.length >= 2, 'at least a build and a runtime stage');
  const major = new RegExp(`(^|/)node:${pinnedMajor}(-|$)|/nodejs${pinnedMajor}-`);
  for (const s of stages) t.regex(s.image, major, `stage ${s.name} uses a Node ${pinnedMajor} image (${s.image})`);
  t.false(stages.some((s) => /node(js)?:?20\b|nodejs20-/.test(s.image)), 'no Node 20 (end of life 2026-04-30)');
  t.not(final?.name, stages[0]?.name);
});

test('no HEALTHCHECK (Kubernetes probes /healthz and /readyz)', (t) => {
  for (const s of stages) t.false(s.instructions.some((i) => i.op === 'HEALTHCHECK'), `stage ${s.name}`);
});

test('runtime runs as a numeric non-root user', (t) => {
  const users = final?.instructions.filter((i) => i.op === 'USER') ?? [];
  const user = users[users.length - 1]?.args ?? '';
  t.regex(user, /^[0-9]+(:[0-9]+)?$/, 'numeric, so Kubernetes can verify runAsNonRoot');
  t.not(Number(user.split(':')[0]), 0);
  t.is(users.length, 1, 'a single USER, after the files are in place');
  const last = final?.instructions.filter((i) => i.op !== 'ENTRYPOINT' && i.op !== 'CMD' && i.op !== 'EXPOSE') ?? [];
  t.is(last[last.length - 1]?.op, 'USER', 'USER comes after every COPY/RUN of the runtime stage');
});

test('runtime holds production dependencies, compiled JavaScript and src/proto only', (t) => {
  const prodStage = stages.find((s) => s.instructions.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args)));
  t.truthy(prodStage, 'a stage runs npm ci --omit=dev');
  t.false(prodStage?.instructions.some((i) => i.op === 'RUN' && /npm run build|tsc/.test(i.args)) ?? true, 'and builds nothing');
  const buildStage = stages.find((s) => s.instructions.some((i) => i.op === 'RUN' && /npm run build/.test(i.args)));
  t.truthy(buildStage, 'a stage runs npm run build');
  const copies = (final?.instructions ?? []).filter((i) => i.op === 'COPY' || i.op === 'ADD').map((i) => ({ ...copyParts(i.args), op: i.op }));
  t.false(copies.some((c) => c.op === 'ADD'), 'COPY, not ADD');
  const dests = copies.map((c) => c.dest.replace(/^\.\//, '').replace(/\/$/, ''));
  // package.json carries "type": "module"; src/proto is where src/protos.ts looks for the .proto files.
  for (const d of ['node_modules', 'dist', 'src/proto', 'package.json']) t.true(dests.includes(d), `runtime has ${d}`);
  t.is(copies.find((c) => c.dest.replace(/^\.\//, '') === 'src/proto')?.sources[0]?.replace(/^.*?\/(src\/proto)$/, '$1'), 'src/proto');
  t.false(dests.some((d) => d === 'src' || (d.startsWith('src/') && d !== 'src/proto')), 'nothing else from src/');
  t.is(copies.find((c) => c.dest.includes('node_modules'))?.from, prodStage?.name, 'node_modules from the --omit=dev stage');
  t.is(copies.find((c) => c.dest.includes('dist'))?.from, buildStage?.name, 'dist from the build stage');
  for (const c of copies) {
    t.truthy(c.from, `runtime COPY ${c.sources.join(' ')} comes from a build stage, not from the sources`);
    for (const s of c.sources) t.notRegex(s, /(^|\/)(src|controller|reconcilers|test|tsconfig[^/]*|generated)$/, `no TypeScript sources in the runtime (${s})`);
  }
  t.false((final?.instructions ?? []).some((i) => i.op === 'RUN'), 'no RUN in the runtime stage (distroless has no shell)');
  t.false(/npm install\b/.test(dockerfile), 'npm ci, never npm install');
  const env = (final?.instructions ?? []).filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
  t.false(env.includes('STATEMANAGER_CONFIG'), 'no config path baked in: the program must start without a mounted file');
  t.false(/PASSWORD|SECRET|TOKEN/i.test(env), 'no secrets in the image');
});

test('entrypoint runs the compiled program in exec form; ports exposed', (t) => {
  const start = pkg.scripts.start ?? '';
  const main = /node\s+(\S+)/.exec(start)?.[1];
  t.is(main, 'dist/src/main.js', 'package.json start script');
  const ep = final?.instructions.find((i) => i.op === 'ENTRYPOINT');
  t.truthy(ep, 'ENTRYPOINT');
  const argv = JSON.parse(ep?.args ?? '[]') as string[];
  t.regex(argv[0] ?? '', /(^|\/)node(js)?$|\/nodejs\/bin\/node$/, 'node is PID 1 (exec form), so it receives SIGTERM');
  t.is(argv[1], main);
  const exposed = (final?.instructions ?? []).filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
  t.deepEqual(exposed.sort(), ['47006', '47086']);
});

test('build stage copies everything tsconfig.build.json compiles; context sources exist', (t) => {
  t.true(existsSync(join(repoRoot, 'src/proto/statemanager.proto')), 'the .proto files are in src/proto');
  const build = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { include: string[]; extends?: string };
  const buildStage = stages.find((s) => s.instructions.some((i) => i.op === 'RUN' && /npm run build/.test(i.args)));
  const copied = (buildStage?.instructions ?? [])
    .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) => copyParts(i.args).sources.map((s) => s.replace(/^\.\//, '').replace(/\/$/, '')));
  for (const dir of build.include) t.true(copied.includes(dir), `build stage copies ${dir}/`);
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) t.true(copied.includes(f), `build stage copies ${f}`);
  for (const src of new Set([...copied, ...stages.flatMap((s) => s.instructions.filter((i) => i.op === 'COPY' && !i.args.includes('--from=')).flatMap((i) => copyParts(i.args).sources))])) {
    const p = src.replace(/^\.\//, '');
    t.true(existsSync(join(repoRoot, p)), `COPY source ${p} exists in the build context`);
  }
});

/** Docker's .dockerignore semantics, enough for these checks: globs, **, ! exceptions, parents. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegex = (p: string) =>
    new RegExp(
      '^' +
        p
          .replace(/^\/+/, '')
          .replace(/\/+$/, '')
          .split(/(\*\*\/|\*\*|\*|\?)/)
          .map((part) => {
            if (part === '**/') return '(?:.*/)?';
            if (part === '**') return '.*';
            if (part === '*') return '[^/]*';
            if (part === '?') return '[^/]';
            return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
          })
          .join('') +
        '$',
    );
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const re = toRegex(neg ? raw.slice(1) : raw);
    if (prefixes.some((p) => re.test(p))) ignored = !neg;
  }
  return ignored;
}

test('.dockerignore keeps the build inputs and drops everything else that matters', (t) => {
  const patterns = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const needed = [
    'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json',
    'src/main.ts', 'controller/controller.ts', 'domain/keys.ts', 'src/proto/statemanager.proto', 'src/generated/statemanager.ts',
  ];
  for (const p of needed) t.false(dockerIgnored(patterns, p), `${p} must reach the build`);
  const dropped = ['node_modules/ava/index.js', '.git/HEAD', 'dist/src/main.js', '.tools/helm/helm', 'test/deploy/chart.test.ts', '.etcd/member', 'server.key', 'certs/tls.pem'];
  for (const p of dropped) t.true(dockerIgnored(patterns, p), `${p} must not be sent to the builder`);
});

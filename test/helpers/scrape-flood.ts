// A /metrics scrape flood for tests and measurements: a child process runs `clients` loops, each
// scraping as fast as the server answers for `durationMs`, and probes /healthz every 50 ms,
// while this process (the server's) measures its own CPU time and event-loop delay. The client
// lives in another process so the CPU figures are the server's alone. Figures only: the caller
// prints them; nothing here asserts a time (the machines are shared and their timings vary).
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface FloodFigures {
  scrapes: number;
  /** Scrapes answered with a status other than 200. */
  failed: number;
  /** This process's CPU time (user + system) per scrape, ms. */
  serverCpuMsPerScrape: number;
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** The slowest /healthz answer during the flood, as the client saw it, ms. */
  healthzMaxMs: number;
}

const CLIENT = `
import { request } from 'node:http';
const [port, clients, durationMs] = process.argv.slice(1).map(Number);
const get = (path) => new Promise((resolve, reject) => {
  const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  req.on('error', reject);
  req.end();
});
const end = Date.now() + durationMs;
let scrapes = 0, failed = 0, healthzMaxMs = 0;
const client = async () => { while (Date.now() < end) { if ((await get('/metrics')) !== 200) failed++; scrapes++; } };
const probe = async () => { while (Date.now() < end) { const t0 = performance.now(); await get('/healthz'); healthzMaxMs = Math.max(healthzMaxMs, performance.now() - t0); await new Promise((r) => setTimeout(r, 50)); } };
await Promise.all([...Array.from({ length: clients }, client), probe()]);
process.stdout.write(JSON.stringify({ scrapes, failed, healthzMaxMs }));
`;

export async function scrapeFlood(port: number, o: { clients: number; durationMs: number }): Promise<FloodFigures> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const cpu0 = process.cpuUsage();
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, String(port), String(o.clients), String(o.durationMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const cpu = process.cpuUsage(cpu0);
  h.disable();
  if (code !== 0) throw new Error(`scrape flood client exited ${code}`);
  const r = JSON.parse(out) as { scrapes: number; failed: number; healthzMaxMs: number };
  const ms = (ns: number): number => round(ns / 1e6);
  return {
    scrapes: r.scrapes,
    failed: r.failed,
    serverCpuMsPerScrape: round((cpu.user + cpu.system) / 1000 / Math.max(1, r.scrapes)),
    loopDelayP50Ms: ms(h.percentile(50)),
    loopDelayP99Ms: ms(h.percentile(99)),
    loopDelayMaxMs: ms(h.max),
    healthzMaxMs: round(r.healthzMaxMs),
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

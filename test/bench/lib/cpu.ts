// Who used the two cores during a measurement: statemanager, etcd, the generator, the harness
// itself, and the machine as a whole (everything else included, e.g. other work on the host).
import { readdirSync, readFileSync } from 'node:fs';
import { monoMs } from './common.js';
import { procSample } from './statemanager.js';

function machineBusySeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!; // cpu  user nice system idle iowait irq softirq steal
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

/** The pid of the etcd serving `dataDir` (helpers/etcd does not expose it). */
export function etcdPid(dataDir: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes(dataDir) && cmd.includes('etcd')) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

export type CpuShares = Record<string, number> & { machine: number; others: number; seconds: number };

/** Start a window; `end()` gives each process's CPU as a fraction of one core over it. */
export function cpuWindow(pids: Record<string, number | undefined>): { end(): CpuShares } {
  const t0 = monoMs();
  const m0 = machineBusySeconds();
  const self0 = process.cpuUsage();
  const p0: Record<string, number> = {};
  for (const [k, pid] of Object.entries(pids)) if (pid) p0[k] = procSample(pid)?.cpuSeconds ?? NaN;
  return {
    end(): CpuShares {
      const seconds = (monoMs() - t0) / 1000;
      const m1 = machineBusySeconds();
      const self = process.cpuUsage(self0);
      const out: Record<string, number> = {};
      let ours = 0;
      for (const [k, pid] of Object.entries(pids)) {
        if (!pid || p0[k] === undefined) continue;
        const v = ((procSample(pid)?.cpuSeconds ?? NaN) - p0[k]!) / seconds;
        out[k] = v;
        if (Number.isFinite(v)) ours += v;
      }
      out.harness = (self.user + self.system) / 1e6 / seconds;
      ours += out.harness;
      const machine = (m1.busy - m0.busy) / seconds;
      return { ...out, machine, others: Math.max(0, machine - ours), seconds } as CpuShares;
    },
  };
}

export function formatShares(s: CpuShares): string {
  const parts = Object.entries(s)
    .filter(([k]) => k !== 'seconds' && k !== 'machine')
    .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`);
  return `${parts.join(', ')} (machine ${(s.machine * 100).toFixed(0)}% of 200%)`;
}

/**
 * The machine is shared (other work may run on it): wait, up to `maxWaitMs`, until processes
 * other than ours use less than `threshold` of a core over a 1 s window. Returns what was seen.
 */
export async function waitQuiet(
  pids: Record<string, number | undefined>,
  maxWaitMs: number,
  threshold = 0.1,
): Promise<{ waitedMs: number; others: number }> {
  if (maxWaitMs <= 0) return { waitedMs: 0, others: NaN };
  const t0 = monoMs();
  let warned = false;
  for (;;) {
    const w = cpuWindow(pids);
    await new Promise((r) => setTimeout(r, 1000));
    const s = w.end();
    const waitedMs = monoMs() - t0;
    if (s.others <= threshold || waitedMs >= maxWaitMs) {
      if (s.others > threshold) process.stderr.write(`[bench] machine still busy (other processes ${(s.others * 100).toFixed(0)}% of a core); measuring anyway\n`);
      return { waitedMs, others: s.others };
    }
    if (!warned) {
      process.stderr.write(`[bench] other processes use ${(s.others * 100).toFixed(0)}% of a core; waiting up to ${(maxWaitMs / 1000).toFixed(0)} s for a quiet machine\n`);
      warned = true;
    }
  }
}

// Every child process the benchmark starts is registered here and killed when the harness
// exits — normally, on an error, or on SIGINT/SIGTERM — so no etcd, statemanager or generator
// outlives a run.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const live = new Set<ChildProcess>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const p of live) {
      try {
        p.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping every child process\n`);
      process.exit(130);
    });
  }
}

export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  hook();
  const child = spawn(cmd, args, opts);
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** Signal, then wait for exit; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

export function liveChildren(): number {
  return live.size;
}

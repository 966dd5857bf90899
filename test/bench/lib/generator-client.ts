// The harness side of the load generator: spawn it (a separate Node process), send commands,
// await results. Results carry typed arrays, so IPC uses structured-clone serialization.
import { join } from 'node:path';
import type { GeneratorCommand } from '../generator.js';
import type { FleetShape } from './fleet.js';
import { IpcChild } from './ipc-child.js';
import { spawnTracked } from './procs.js';

export class GeneratorProcess {
  private readonly ipc: IpcChild<GeneratorCommand>;

  constructor(root: string, endpoint: string, shape: FleetShape) {
    this.ipc = new IpcChild('generator', () => {
      // BENCH_GENERATOR_NICE: run the generator at a lower CPU priority (node agents normally
      // run on other machines; on this one they compete with etcd and statemanager).
      const nice = Number(process.env.BENCH_GENERATOR_NICE ?? '0');
      const argv = ['--import', 'tsx', join(root, 'test/bench/generator.ts')];
      const [cmd, args] = nice > 0 ? ['nice', ['-n', String(nice), process.execPath, ...argv]] : [process.execPath, argv];
      return spawnTracked(cmd, args, {
        cwd: root,
        env: { ...process.env, BENCH_ETCD: endpoint, BENCH_FLEET: JSON.stringify(shape) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
    });
  }

  get pid(): number | undefined {
    return this.ipc.pid;
  }

  start(): Promise<void> {
    return this.ipc.start();
  }

  call<T>(cmd: GeneratorCommand, timeoutMs: number): Promise<T> {
    return this.ipc.call<T>(cmd, timeoutMs);
  }

  stop(): Promise<void> {
    return this.ipc.stop();
  }
}

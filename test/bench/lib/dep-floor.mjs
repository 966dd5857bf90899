// The footprint scenario's floor: a process that only loads statemanager's runtime dependencies
// (the packages dist/src/main.js imports at start) and then sits idle — what Node and the
// libraries cost by themselves. With --bare it loads nothing (Node alone). Plain JavaScript, run
// with plain node like statemanager. Prints one JSON line when loaded and one per SIGUSR2
// (process.memoryUsage() after the idle period). Nothing here is part of statemanager.
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setInterval } from 'node:timers';

const t0 = performance.now();
if (!process.argv.includes('--bare')) {
  await Promise.all([
    import('etcd3'),
    import('@grpc/grpc-js'),
    import('@grpc/proto-loader'),
    import('prom-client'),
    import('winston'),
    import('yaml'),
    import('zod'),
    import('cockatiel'),
    import('p-queue'),
  ]);
}
const loadMs = performance.now() - t0;
process.stdout.write(JSON.stringify({ loaded: true, loadMs, sinceStartMs: performance.now() }) + '\n');
process.on('SIGUSR2', () => process.stdout.write(JSON.stringify({ memory: process.memoryUsage() }) + '\n'));
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1 << 30);

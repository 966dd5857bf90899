// The fault suite (npm run test:faults): real processes, one scenario at a time.
export default {
  files: ['test/faults/**/*.fault.ts'],
  extensions: ['ts'],
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  concurrency: 1,
  timeout: '240s',
};

#!/usr/bin/env node
// The `statemanager` command-line tool (see docs/cli.md). SIGINT/SIGTERM stop `watch` cleanly
// and interrupt other commands; a second signal exits at once.
import { run } from './cli/main.js';

// Node warns (DEP0123) when a TLS connection to an IP address gets it as the server name, as
// grpc-js does for `--server 10.0.0.5:47006 --tls`; the certificate is still checked against
// the address. A command line prints its own messages only.
process.noDeprecation = true;

const controller = new AbortController();
let signals = 0;
const onSignal = (): void => {
  signals++;
  if (signals > 1) process.exit(130);
  controller.abort();
  // Whatever does not wind down in time is cut short.
  setTimeout(() => process.exit(130), 3000).unref();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
// Exit even if a client library still holds a handle; stdout and stderr to pipes and files are
// written synchronously on POSIX, so nothing printed is lost.
process.exit(code);

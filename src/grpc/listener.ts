// Where gRPC connections come in: statemanager listens itself and hands each accepted
// connection to grpc-js (its connection injector) only within the connection bounds
// (connection-gate.ts), so one past them is closed before TLS or HTTP/2 spend anything on it.
import { lookup } from 'node:dns/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { splitHostPort } from '../config/address.js';
import { errorMessage } from '../../controller/errors.js';
import type { Logger } from '../../controller/logger.js';
import type { ConnectionGate } from './connection-gate.js';

/**
 * Connections the kernel holds for us before we accept them (capped by net.core.somaxconn).
 * Node's default is 511: 4,000–5,000 node agents connecting at once (statemanager restarted)
 * had 661–2,133 connections reset by the kernel (black-box probing), each client then backing off.
 */
export const LISTEN_BACKLOG = 4096;

export interface Listener {
  readonly port: number;
  /** Stops accepting; connections already handed on are grpc-js's to close. */
  close(): void;
}

/**
 * Listens on every address `addr`'s host name has (as grpc-js's bindAsync does: localhost is
 * 127.0.0.1 and ::1), all on one port; resolves once at least one is bound.
 */
export async function listenGated(addr: string, gate: ConnectionGate, inject: (socket: Socket) => void, logger: Logger): Promise<Listener> {
  const accept = (socket: Socket): void => {
    if (gate.admit(socket)) inject(socket);
    else socket.destroy();
  };
  const { host, port } = splitHostPort(addr);
  const addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  const servers: Server[] = [];
  let bound = port;
  let firstError: unknown;
  for (const address of addresses) {
    const server = createServer({ noDelay: true }, accept);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address, port: bound, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      firstError ??= err;
      continue;
    }
    // Failed accepts (out of file descriptors) are the kernel's refusals: said, never fatal.
    server.on('error', (err) => logger.warn('gRPC listener error', { address, error: errorMessage(err) }));
    const a = server.address();
    if (a !== null && typeof a === 'object') bound = a.port;
    servers.push(server);
  }
  if (servers.length === 0) throw firstError ?? new Error(`no address for ${host}`);
  return {
    port: bound,
    close: () => {
      for (const s of servers) s.close();
    },
  };
}

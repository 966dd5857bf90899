// The etcd3 client from configuration: endpoints, username/password, TLS or client
// certificates, and message sizes large enough for big pages.
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { Config } from '../config.js';

export function createEtcdClient(c: Config['etcd']): Etcd3 {
  const options: IOptions = {
    hosts: c.endpoints,
    dialTimeout: c.requestTimeout,
    grpcOptions: {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
  };
  if (c.tls.caFile || c.tls.certFile) {
    options.credentials = {
      rootCertificate: c.tls.caFile ? readFileSync(c.tls.caFile) : Buffer.alloc(0),
      ...(c.tls.keyFile ? { privateKey: readFileSync(c.tls.keyFile) } : {}),
      ...(c.tls.certFile ? { certChain: readFileSync(c.tls.certFile) } : {}),
    };
  }
  if (c.username) options.auth = { username: c.username, password: c.password };
  return new Etcd3(options);
}

// The etcd3 client from configuration: endpoints, username/password, TLS or client
// certificates, and message sizes large enough for big pages.
import { readFileSync } from 'node:fs';
import { ExponentialBackoff } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import type { Config } from '../config.js';

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

export function createEtcdClient(c: Config['etcd']): Etcd3 {
  const options: IOptions = {
    hosts: c.endpoints,
    dialTimeout: c.requestTimeout,
    // etcd3's default reconnect backoff grows to 30 s: after an etcd outage watches would
    // resume up to 30 s late (and a closed client keeps a timer that long).
    // (etcd3 types this as an IBackoff but calls it as the factory cockatiel exports.)
    faultHandling: {
      watchBackoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 3000 }) as unknown as WatchBackoff,
    },
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

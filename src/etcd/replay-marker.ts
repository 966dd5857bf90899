// The replay marker (src/state-api/replay-pool.ts): a replay with no buffered change to wait for
// puts statemanager's one marker key and ends once the marker's event has come. Any replica may
// write it; the value names the replica.
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';

export function etcdReplayMarker(client: Etcd3, keys: KeyLayout, identity: string, requestTimeoutMs: number): () => Promise<number> {
  const key = Buffer.from(keys.replayMarker);
  const value = Buffer.from(identity);
  return async () => Number((await client.kv.put({ key, value }, { deadline: Date.now() + requestTimeoutMs })).header.revision);
}

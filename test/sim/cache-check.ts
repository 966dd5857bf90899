// Once quiet, a live replica's caches hold what etcd holds, at the same revisions.
import type { FakeEtcdServer } from './fake-etcd.js';
import type { SimReplica } from './replica.js';

export function cacheDiff(r: SimReplica, server: FakeEtcdServer): string[] {
  const out: string[] = [];
  for (const inf of r.fleet.caches.informers) {
    for (const key of inf.cache.keys()) {
      const kv = server.data.get(key);
      const entry = inf.cache.get(key)!;
      if (!kv) out.push(`${r.conn.id}: informer ${inf.name} still holds ${key}, gone from etcd`);
      else if (kv.modRevision !== entry.modRevision) out.push(`${r.conn.id}: informer ${inf.name} holds ${key} at revision ${entry.modRevision}, etcd at ${kv.modRevision}`);
    }
    for (const kv of server.data.values()) {
      // Malformed values count as absent; history and the leader key are under no informer's prefix of interest.
      if (kv.key.startsWith(inf.prefix) && !inf.cache.get(kv.key) && !kv.value.startsWith('{not json') && !kv.key.startsWith('/statemanager/history/') && kv.key !== '/statemanager/leader') {
        out.push(`${r.conn.id}: informer ${inf.name} misses ${kv.key}`);
      }
    }
  }
  return out;
}

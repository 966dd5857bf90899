// Keys' values at given revisions, for a replay's old states (src/state-api/replay-decoder.ts):
// range reads in transactions of at most 100 (etcd's --max-txn-ops is 128 by default), one after
// another. A replay asks once per key it touches, where prev_kv made etcd look up every event.
import type { Etcd3 } from 'etcd3';
import { errorMessage } from '../../controller/errors.js';
import { ReplayLookupCompacted, type LookUpPrevious } from '../state-api/replay-decoder.js';

export const LOOKUPS_PER_TRANSACTION = 100;

export function etcdPreviousValues(client: Etcd3, requestTimeoutMs: number): LookUpPrevious {
  return async (lookups) => {
    const out = new Array<string | undefined>(lookups.length);
    for (let i = 0; i < lookups.length; i += LOOKUPS_PER_TRANSACTION) {
      const part = lookups.slice(i, i + LOOKUPS_PER_TRANSACTION);
      let res;
      try {
        res = await client.kv.txn(
          { success: part.map((l) => ({ request_range: { key: Buffer.from(l.key), revision: l.revision } })) },
          { deadline: Date.now() + requestTimeoutMs },
        );
      } catch (err) {
        if (/compacted/i.test(errorMessage(err))) throw new ReplayLookupCompacted(Math.min(...part.map((l) => l.revision)));
        throw err;
      }
      for (let j = 0; j < part.length; j++) out[i + j] = res.responses[j]?.response_range?.kvs[0]?.value.toString('utf8');
    }
    return out;
  };
}

// Every key of a range at one revision, page by page: one giant response for a fleet of 100k
// keys would exceed the client's message limit and hold etcd. The caller sends each page (with
// its own deadline and error handling) and keeps what it needs of it.
import type { IKeyValue, IRangeRequest, IRangeResponse } from 'etcd3';

export async function rangePaged(
  send: (req: IRangeRequest) => Promise<IRangeResponse>,
  range: { key: Buffer; rangeEnd: Buffer; pageSize: number; revision?: number },
  onPage: (kvs: IKeyValue[]) => void,
): Promise<number> {
  let revision = range.revision ?? 0;
  let from = range.key;
  for (;;) {
    const res = await send({ key: from, range_end: range.rangeEnd, limit: range.pageSize, ...(revision > 0 ? { revision } : {}) });
    // Later pages are read at the first page's revision: one consistent snapshot.
    if (revision === 0) revision = Number(res.header.revision);
    onPage(res.kvs);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || last === undefined) return revision;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
}

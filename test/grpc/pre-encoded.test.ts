// Responses encoded once and kept (a subscription's events live with their changes in the resume
// buffer): each in memory of its own. protobufjs encodes into Node's shared buffer pool, so a kept
// 110-byte event held a whole 64 KiB slab (found by black-box probing: 185 MB of slabs after 30
// minutes of ordinary traffic on a leader).
import test from 'ava';
import { loadStateManagerProto, ownMemory, preEncoder } from '../../src/grpc/proto.js';

const service = loadStateManagerProto().statemanager.StateManagerConnection.service;
const method = service.SubscribeToStateChanges as unknown as { responseSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown };

const event = (i: number) => ({
  event_type: 'EVENT_TYPE_STATE_CHANGE',
  state_change: { resource_type: 'RESOURCE_TYPE_MODEL', resource_name: `model-${i}`, current_state: 'Running', target_state: 'Dead', transition_id: '', timestamp_ns: '1767225600000000000', source: 'statemanager' },
  event_timestamp_ns: '1767225600000000000',
  event_id: `${1000 + i}-0`,
  severity: 'SEVERITY_ERROR',
  description: `model model-${i}: Running -> Dead`,
  metadata: { revision: String(1000 + i), kind: 'model' },
});

/** Bytes of the ArrayBuffers `kept` holds alive, per buffer kept. */
function pinnedPerBuffer(kept: Buffer[]): number {
  let bytes = 0;
  for (const ab of new Set(kept.map((b) => b.buffer))) bytes += ab.byteLength;
  return bytes / kept.length;
}

/** 1,000 encodings kept, with 8 KiB of other pooled allocations between each two (a busy process). */
function keepEncoded(encode: (v: unknown) => Buffer): Buffer[] {
  const kept: Buffer[] = [];
  for (let i = 0; i < 1000; i++) {
    kept.push(encode(event(i)));
    Buffer.allocUnsafe(8 * 1024).fill(1);
  }
  return kept;
}

test('a kept pre-encoded event holds its own bytes (under 512 B each), where the serializer alone pins a pool slab every few events; the bytes decode as the event', (t) => {
  const encode = preEncoder(method);
  const kept = keepEncoded(encode);
  const own = pinnedPerBuffer(kept);
  const pooled = pinnedPerBuffer(keepEncoded((v) => method.responseSerialize(v)));
  t.log(`ArrayBuffer bytes held per kept event: ${own.toFixed(0)} own, ${pooled.toFixed(0)} as serialized`);
  t.true(own < 512, `${own} B per event`);
  t.true(pooled > 4096, `the control: ${pooled} B per event as serialized (Node's pool: ${Buffer.poolSize} B slabs)`);
  t.like(method.responseDeserialize(kept[7]!), { event_id: '1007-0', description: 'model model-7: Running -> Dead' });
});

test('ownMemory copies only a slice of a larger buffer', (t) => {
  const whole = Buffer.allocUnsafeSlow(100).fill(7);
  t.is(ownMemory(whole), whole, 'already its own: not copied');
  const slice = Buffer.from('abc'); // pooled
  const copy = ownMemory(slice);
  t.not(copy, slice);
  t.is(copy.buffer.byteLength, 3);
  t.deepEqual(copy, slice);
});

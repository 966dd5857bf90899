// Which changes of a watch response have an unknown old state: etcd leaves prev_kv out when the
// previous revision was compacted while the watch was behind (a creation never has one).
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatchEvent } from '../../src/etcd/watch-client.js';
import { unknownPreviousAt } from '../../src/state-api/records.js';

const keys = new KeyLayout('');

function event(type: 'Put' | 'Delete', key: string, revision: number, version: number, prev: string | null): EtcdWatchEvent {
  const kv = (v: string) => ({ key: Buffer.from(key), value: Buffer.from(v), create_revision: '1', mod_revision: String(revision), version: String(version), lease: '0' });
  return { type, kv: kv(type === 'Put' ? 'Running' : ''), prev_kv: prev === null ? null : kv(prev) };
}

const model = keys.stateKey('model', 'm');

test('a creation (version 1) has no previous value: known', (t) => {
  t.is(unknownPreviousAt(keys, [event('Put', model, 10, 1, null)]), undefined);
});

test('a put with its previous value, and a deletion with it: known', (t) => {
  t.is(unknownPreviousAt(keys, [event('Put', model, 10, 2, 'Dead'), event('Delete', model, 11, 0, 'Running')]), undefined);
});

test('a put of a key written before (version 2 and on) without its previous value: unknown, at its revision', (t) => {
  t.is(unknownPreviousAt(keys, [event('Put', model, 10, 1, null), event('Put', model, 11, 2, null)]), 11);
  t.is(unknownPreviousAt(keys, [event('Put', model, 12, 7, null)]), 12);
});

test('a deletion without its previous value: unknown', (t) => {
  t.is(unknownPreviousAt(keys, [event('Delete', model, 13, 0, null)]), 13);
});

test('keys that are not states (history entries, node keys) do not count', (t) => {
  t.is(unknownPreviousAt(keys, [event('Put', keys.nodeStatusKey('n1'), 14, 3, null), event('Delete', keys.historyKey('model', 'm', 1), 15, 0, null)]), undefined);
});

// The stored form of a container: equal containers serialize equally, whatever order their maps
// arrive in, and the map is copied only when its keys are out of order.
import test from 'ava';
import { containerJson, sameContainer, storedContainerJson, toStoredContainer } from '../../src/grpc/container-record.js';
import type { ContainerInfo__Output } from '../../src/generated/monitoringserver/ContainerInfo.js';

const info = (state: Record<string, string>): ContainerInfo__Output => ({ id: 'c', names: ['/n'], image: 'i', state, config: {}, annotation: {}, stats: {} });

test('maps in any order give one JSON, keys sorted; a map in order is used as it is', (t) => {
  const inOrder = { Pid: '1', Running: 'true', Status: 'running' };
  const shuffled = { Status: 'running', Pid: '1', Running: 'true' };
  const a = toStoredContainer(info(inOrder));
  const b = toStoredContainer(info(shuffled));
  t.is(a.state, inOrder, 'in order: not copied');
  t.not(b.state, shuffled, 'out of order: a sorted copy');
  t.is(storedContainerJson(a), storedContainerJson(b));
  t.is(storedContainerJson(a), '{"id":"c","names":["/n"],"image":"i","state":{"Pid":"1","Running":"true","Status":"running"},"config":{},"annotation":{}}');
  t.is(containerJson(b), storedContainerJson(b));
});

test('index-like keys enumerate first in any object: the JSON is the same whichever way the map came', (t) => {
  const orders = [
    { b: '1', '10': '2', '9': '3', a: '4' },
    { a: '4', b: '1', '9': '3', '10': '2' },
    { '10': '2', a: '4', '9': '3', b: '1' },
  ];
  const jsons = orders.map((state) => storedContainerJson(toStoredContainer(info(state))));
  t.is(new Set(jsons).size, 1);
  t.true(jsons[0]!.includes('"state":{"9":"3","10":"2","a":"4","b":"1"}'));
  t.true(sameContainer(jsons[0]!, containerJson(toStoredContainer(info(orders[1]!)))));
});

test('a map key "__proto__" stays an entry, as protobufjs decodes it, sorted or not', (t) => {
  const state: Record<string, string> = {};
  Object.defineProperty(state, '__proto__', { value: 'x', enumerable: true, configurable: true, writable: true });
  state.a = 'y';
  const json = storedContainerJson(toStoredContainer(info(state)));
  t.true(json.includes('"state":{"__proto__":"x","a":"y"}'), json);
  const unsorted: Record<string, string> = { z: '1' };
  Object.defineProperty(unsorted, '__proto__', { value: 'x', enumerable: true, configurable: true, writable: true });
  t.true(storedContainerJson(toStoredContainer(info(unsorted))).includes('"state":{"__proto__":"x","z":"1"}'));
});

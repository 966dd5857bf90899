// One etcd and one stand-in ActionController for a whole test file: started before its tests;
// after them the file's own processes stop first (`stopFirst`), then the ActionController, then
// etcd.
import type { TestFn } from 'ava';
import { startActionController, type FakeActionController } from './action-controller.js';
import { startEtcd, type EtcdServer } from './etcd.js';

export interface SharedEnv {
  readonly etcd: EtcdServer;
  readonly ac: FakeActionController;
}

export function sharedEnv(test: TestFn, stopFirst: () => Promise<unknown> = async () => undefined): SharedEnv {
  let etcd: EtcdServer | undefined;
  let ac: FakeActionController | undefined;
  test.before(async () => {
    etcd = await startEtcd();
    ac = await startActionController();
  });
  test.after.always(async () => {
    await stopFirst();
    await ac?.stop();
    await etcd?.stop();
  });
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`sharedEnv: ${what} is not started yet (use it inside a test or hook)`);
    return v;
  };
  return {
    get etcd() {
      return started(etcd, 'etcd');
    },
    get ac() {
      return started(ac, 'the ActionController');
    },
  };
}

// The Manager in memory: start order, leadership pause/resume, resync on winning, the check
// registry, and stop.
import test from 'ava';
import type { LeaderLock } from '../../controller/leader-election.js';
import { Manager, type Caches, type Runnable } from '../../controller/manager.js';
import { assert, eventually } from '../helpers/eventually.js';

class FakeCaches implements Caches {
  synced = false;
  started = false;
  stopped = false;
  private release: (() => void) | undefined;
  start(): void {
    this.started = true;
  }
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => (this.release = r));
  }
  sync(): void {
    this.synced = true;
    this.release?.();
  }
  hasSynced(): boolean {
    return this.synced;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

class FakeLock implements LeaderLock {
  free = false;
  released = 0;
  private loseNow: ((reason: string) => void) | undefined;
  async tryAcquire(): Promise<boolean> {
    if (!this.free) return false;
    this.free = false;
    return true;
  }
  waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((r) => setTimeout(r, Math.min(timeoutMs, 10)));
  }
  lost(): Promise<string> {
    return new Promise((r) => (this.loseNow = r));
  }
  lose(): void {
    this.loseNow?.('lease expired');
  }
  async release(): Promise<void> {
    this.released++;
  }
  async holder(): Promise<string | undefined> {
    return undefined;
  }
}

function recorder(name: string, needLeaderElection: boolean, log: string[]): Runnable {
  return {
    name,
    needLeaderElection,
    start: () => void log.push(`${name}:start`),
    pause: async () => void log.push(`${name}:pause`),
    resume: () => void log.push(`${name}:resume`),
    stop: async () => void log.push(`${name}:stop`),
  };
}

test('runnables start only after the caches synced; without election the leader work starts at once, after a resync', async (t) => {
  const caches = new FakeCaches();
  const log: string[] = [];
  const m = new Manager({ caches, resync: (reason) => void log.push(`resync:${reason}`) });
  m.add(recorder('worker', true, log));
  m.add(recorder('probe', false, log));
  const started = m.start();
  t.true(caches.started);
  await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(log, [], 'nothing before the caches synced');
  t.deepEqual(m.ready().failing, ['informers-synced', 'workers']);
  caches.sync();
  await started;
  t.deepEqual(log, ['probe:start', 'resync:start', 'worker:start']);
  t.true(m.ready().ok);
  t.true(m.isLeader());
});

test('with leader election: leader work starts on winning, pauses on losing, resumes (not restarts) on winning again', async (t) => {
  const caches = new FakeCaches();
  caches.sync();
  const lock = new FakeLock();
  const log: string[] = [];
  const m = new Manager({ caches, resync: (reason) => void log.push(`resync:${reason}`), leaderElection: { identity: 'a', lock, retryPeriodMs: 10, onLost: 'follow' } });
  m.add(recorder('worker', true, log));
  m.add(recorder('probe', false, log));
  await m.start();
  await new Promise((r) => setTimeout(r, 30));
  t.deepEqual(log, ['probe:start'], 'a follower runs only what needs no leadership');
  t.true(m.ready().ok, 'a follower is ready');

  lock.free = true;
  await eventually(() => assert.ok(m.leaderWorkRunning()));
  t.deepEqual(log.slice(1), ['resync:became leader', 'worker:start']);
  lock.lose();
  await eventually(() => assert.ok(!m.leaderWorkRunning()));
  t.is(log.at(-1), 'worker:pause');
  lock.free = true;
  await eventually(() => assert.ok(m.leaderWorkRunning()));
  t.deepEqual(log.slice(-2), ['resync:became leader', 'worker:resume']);

  await m.stop();
  t.true(caches.stopped);
  t.true(lock.released >= 1, 'leadership handed over on stop');
  t.true(log.includes('worker:stop') && log.includes('probe:stop'));
});

test('the check registry: named checks, a throwing check fails, a leader not yet running is not ready', async (t) => {
  const caches = new FakeCaches();
  caches.sync();
  const m = new Manager({ caches });
  let up = false;
  m.addReadyCheck('etcd', () => (up ? undefined : 'unreachable'));
  m.addReadyCheck('broken', () => {
    throw new Error('boom');
  });
  m.addHealthCheck('loop', () => undefined);
  t.deepEqual(m.ready().failing, ['workers', 'etcd', 'broken']);
  await m.start();
  up = true;
  t.deepEqual(m.ready().failing, ['broken']);
  t.true(m.healthy().ok);
});

test('periodic resync runs only while leading', async (t) => {
  const caches = new FakeCaches();
  caches.sync();
  const lock = new FakeLock();
  lock.free = true;
  const reasons: string[] = [];
  const m = new Manager({ caches, resync: (r) => void reasons.push(r), resyncPeriodMs: 20, leaderElection: { identity: 'a', lock, retryPeriodMs: 10, onLost: 'follow' } });
  await m.start();
  await eventually(() => assert.ok(reasons.filter((r) => r === 'periodic').length >= 2));
  lock.lose();
  await eventually(() => assert.ok(!m.leaderWorkRunning()));
  const count = reasons.length;
  await new Promise((r) => setTimeout(r, 80));
  t.is(reasons.length, count, 'no resync as a follower');
  await m.stop();
});

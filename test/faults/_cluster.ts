// A three-member etcd cluster on loopback, each member a real process on its own ports and data
// directory, that a test can kill and bring back one member at a time. With `isolatable`, the
// first member runs in a network namespace of its own, so a test can cut it off from its peers
// while clients still reach it (what loopback alone cannot tell apart).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort } from '../helpers/etcd.js';

export interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess | undefined;
  /** The network namespace the member runs in, if not the test's own. */
  netns?: string;
}

/** A namespace joined to the test's by a veth pair: `host` is the test's side, `inside` the namespace's. */
interface Netns {
  name: string;
  link: string;
  host: string;
  inside: string;
}

/** Namespaces made by this process: each its own names and subnet (the kernel frees an old one's link later). */
let netnsMade = 0;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

function makeNetns(): Netns {
  const n = netnsMade++;
  const name = `smiso${process.pid}-${n}`;
  const link = `smv${process.pid % 100_000}x${n}`; // at most 15 characters, with the peer's `p`
  const subnet = `10.213.${100 + ((process.pid + n) % 150)}`;
  const made = { name, link, host: `${subnet}.1`, inside: `${subnet}.2` };
  removeNetns(made); // one left by a run killed before its clean-up
  try {
    ip('netns', 'add', name);
    ip('link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`);
    ip('link', 'set', `${link}p`, 'netns', name);
    ip('addr', 'add', `${subnet}.1/30`, 'dev', link);
    ip('link', 'set', link, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${subnet}.2/30`, 'dev', `${link}p`);
    ip('netns', 'exec', name, 'ip', 'link', 'set', `${link}p`, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    removeNetns(made); // half made: nothing left behind
    throw err;
  }
  return made;
}

/** The link first (deleting one end deletes the pair at once; the namespace's end would go only once the kernel frees it). */
function removeNetns(n: Netns): void {
  for (const args of [['link', 'del', n.link], ['netns', 'del', n.name]]) {
    try {
      ip(...args);
    } catch {
      // already gone
    }
  }
}

const port = (url: string): string => new URL(url).port;

export class EtcdCluster {
  private readonly clients: Etcd3[] = [];

  private constructor(
    readonly members: Member[],
    private readonly netns?: Netns,
  ) {}

  /** Free ports can be taken again before etcd binds them (a member then exits at once): start afresh. */
  static async start(size = 3, o: { isolatable?: boolean } = {}): Promise<EtcdCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await EtcdCluster.startOnce(size, o.isolatable === true);
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
  }

  private static async startOnce(size: number, isolatable: boolean): Promise<EtcdCluster> {
    const netns = isolatable ? makeNetns() : undefined;
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      const addr = !netns ? '127.0.0.1' : i === 0 ? netns.inside : netns.host;
      members.push({
        name: `m${i}`,
        clientUrl: `http://${addr}:${await freePort()}`,
        peerUrl: `http://${addr}:${await freePort()}`,
        dataDir: mkdtempSync(join(tmpdir(), `sm-etcd-m${i}-`)),
        proc: undefined,
        ...(netns && i === 0 ? { netns: netns.name } : {}),
      });
    }
    const cluster = new EtcdCluster(members, netns);
    try {
      await Promise.all(members.map((m) => cluster.launch(m, 'new')));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** A client of every member (fails over by itself). */
  client(): Etcd3 {
    const c = new Etcd3({ hosts: this.endpoints });
    this.clients.push(c);
    return c;
  }

  /** The name of the member that currently leads the Raft group. */
  async leader(): Promise<Member> {
    for (const m of this.members) {
      if (!m.proc) continue;
      const c = new Etcd3({ hosts: m.clientUrl });
      try {
        const status = await c.maintenance.status();
        if (status.leader === status.header.member_id) return m;
      } catch {
        // try the next
      } finally {
        c.close();
      }
    }
    throw new Error('no member reports itself leader');
  }

  async kill(m: Member): Promise<void> {
    const p = m.proc;
    m.proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async restart(m: Member): Promise<void> {
    await this.launch(m, 'existing');
  }

  /**
   * Cut a member running in its own namespace off from its peers (both ways), leaving its client
   * port reachable: it loses its leader and, without `hasleader`, would still take calls it cannot
   * serve. Established peer connections are cut too (every packet is dropped, not only new ones).
   */
  isolate(m: Member): void {
    if (!m.netns) throw new Error(`member ${m.name} is not in a namespace of its own`);
    const rules = [['INPUT', port(m.peerUrl)], ...this.members.filter((x) => x !== m).map((x) => ['OUTPUT', port(x.peerUrl)] as const)];
    for (const [chain, p] of rules) ip('netns', 'exec', m.netns, 'iptables', '-A', chain!, '-p', 'tcp', '--dport', p!, '-j', 'DROP');
  }

  heal(m: Member): void {
    if (m.netns) ip('netns', 'exec', m.netns, 'iptables', '-F');
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all(this.members.map((m) => this.kill(m)));
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
    if (this.netns) removeNetns(this.netns);
  }

  private async launch(m: Member, state: 'new' | 'existing'): Promise<void> {
    const initial = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const etcd = process.env.ETCD_BIN ?? 'etcd';
    const child = spawn(
      m.netns ? 'ip' : etcd,
      [
        ...(m.netns ? ['netns', 'exec', m.netns, etcd] : []),
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initial, '--initial-cluster-state', state, '--initial-cluster-token', 'faults',
        '--heartbeat-interval', '100', '--election-timeout', '1000',
        '--logger=zap', '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    live.add(child);
    child.on('exit', () => live.delete(child));
    m.proc = child;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`etcd member ${m.name} exited with ${child.exitCode}`);
      try {
        const res = await fetch(`${m.clientUrl}/health`);
        if (res.ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`etcd member ${m.name} did not become healthy`);
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

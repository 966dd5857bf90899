// A three-member etcd cluster on loopback, each member a real process on its own ports and data
// directory, that a test can kill and bring back one member at a time.
import { spawn, type ChildProcess } from 'node:child_process';
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
}

export class EtcdCluster {
  private readonly clients: Etcd3[] = [];

  private constructor(readonly members: Member[]) {}

  /** Free ports can be taken again before etcd binds them (a member then exits at once): start afresh. */
  static async start(size = 3): Promise<EtcdCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await EtcdCluster.startOnce(size);
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
  }

  private static async startOnce(size: number): Promise<EtcdCluster> {
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      members.push({
        name: `m${i}`,
        clientUrl: `http://127.0.0.1:${await freePort()}`,
        peerUrl: `http://127.0.0.1:${await freePort()}`,
        dataDir: mkdtempSync(join(tmpdir(), `sm-etcd-m${i}-`)),
        proc: undefined,
      });
    }
    const cluster = new EtcdCluster(members);
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

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await Promise.all(this.members.map((m) => this.kill(m)));
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
  }

  private async launch(m: Member, state: 'new' | 'existing'): Promise<void> {
    const initial = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const child = spawn(
      process.env.ETCD_BIN ?? 'etcd',
      [
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

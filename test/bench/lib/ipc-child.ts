// A bench helper process driven over IPC (the load generator, the two-hop relay): spawned by
// the harness, it says hello, answers one command at a time with { ok, result | error }, and
// leaves on { cmd: 'exit' } or SIGTERM.
import type { ChildProcess } from 'node:child_process';
import { stopChild } from './procs.js';

type Reply = { ok: true; result: unknown } | { ok: false; error: string };

export class IpcChild<Command extends { cmd: string }> {
  private child: ChildProcess | undefined;
  private waiting: ((r: Reply) => void) | undefined;
  private exited: string | undefined;

  constructor(
    /** Names the process in errors ("generator did not answer …"). */
    private readonly name: string,
    private readonly spawn: () => ChildProcess,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the process and waits (30 s at most) for its hello. */
  async start(): Promise<void> {
    const child = this.spawn();
    this.child = child;
    child.on('message', (m: Reply) => this.answer(m));
    child.on('exit', (code, signal) => {
      this.exited = `${this.name} exited with ${signal ?? code}`;
      this.answer({ ok: false, error: this.exited });
    });
    const hello = await this.next(30_000);
    if (!hello.ok) throw new Error(hello.error);
  }

  async call<T>(cmd: Command, timeoutMs: number): Promise<T> {
    if (!this.child) throw new Error(`${this.name} not started`);
    const reply = this.next(timeoutMs);
    this.child.send(cmd);
    const r = await reply;
    if (!r.ok) throw new Error(`${this.name} ${cmd.cmd}: ${r.error}`);
    return r.result as T;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    try {
      child.send({ cmd: 'exit' });
    } catch {
      // channel closed
    }
    await stopChild(child, 'SIGTERM', 3000);
  }

  private answer(r: Reply): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.(r);
  }

  private next(timeoutMs: number): Promise<Reply> {
    return new Promise((resolve) => {
      if (this.exited) {
        resolve({ ok: false, error: this.exited });
        return;
      }
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve({ ok: false, error: `${this.name} did not answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }
}

// winston: JSON lines for machines by default, a compact human format for the demo.
import winston from 'winston';
import { blockingWrites, LineBatcher } from './line-batcher.js';

export type LogFormat = 'json' | 'text';

const passThrough = winston.format((info) => info);

/** winston's key for the finished line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');
const safeJson = winston.format.json();

/**
 * The timestamp and the JSON line in one step, by JSON.stringify: logform's timestamp() and
 * json() (safe-stable-stringify, keys sorted) took 2.3 times as long per line, and at the default
 * level every state change is a line (76,000 at a cold start of 100,000 containers: about 1 s of
 * CPU more than at warn, docs/performance.md). What JSON.stringify cannot write (a cycle, a BigInt)
 * goes through logform's json() as before.
 */
const jsonLine = winston.format((info) => {
  info.timestamp = new Date().toISOString();
  try {
    (info as unknown as Record<symbol, unknown>)[MESSAGE] = JSON.stringify(info);
    return info;
  } catch {
    return safeJson.transform(info, safeJson.options);
  }
});

export function createLogger(level: string, format: LogFormat, stream: NodeJS.WritableStream = new LineBatcher(blockingWrites(process.stderr))): winston.Logger {
  const human = winston.format.printf(({ level: lvl, message, timestamp, ...meta }) => {
    const rest = Object.entries(meta)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${String(timestamp).slice(11, 23)} ${lvl.padEnd(5)} ${String(message)}${rest ? ' ' + rest : ''}`;
  });
  // Formats sit on the transport, which checks the level first: a debug line that is dropped
  // is never timestamped or serialised (the logger's own format runs for every call).
  return winston.createLogger({
    level,
    format: passThrough(),
    transports: [
      new winston.transports.Stream({
        stream,
        format: format === 'json' ? jsonLine() : winston.format.combine(winston.format.timestamp(), human),
      }),
    ],
  });
}

/**
 * Ends the log, its last lines flushed. A line logged afterwards, by work still winding down (a
 * leader election attempt failing on the closed clients), is dropped: winston throws "write
 * after end" at the caller, and a SIGTERM right after start-up ended with exit 70 as an unexpected
 * exception in 8 of 10 runs (black-box probing).
 */
export function endLogger(logger: winston.Logger): void {
  logger.end();
  logger.write = (() => true) as typeof logger.write;
}

// winston: JSON lines for machines by default, a compact human format for the demo.
import winston from 'winston';

export type LogFormat = 'json' | 'text';

const passThrough = winston.format((info) => info);

export function createLogger(level: string, format: LogFormat, stream: NodeJS.WritableStream = process.stderr): winston.Logger {
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
        format: winston.format.combine(winston.format.timestamp(), format === 'json' ? winston.format.json() : human),
      }),
    ],
  });
}

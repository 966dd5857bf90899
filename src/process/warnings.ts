// Node's own warnings (a deprecation, an experimental feature) as log lines. Node prints them as
// plain text on stderr, two lines each, among the JSON lines a log pipeline parses: an https etcd
// endpoint given by IP address put DEP0123 ("Setting the TLS ServerName to an IP address is not
// permitted") there (black-box probing). Each distinct warning is logged once, at warn.
import type { Logger } from '../../controller/logger.js';

/** Distinct warnings logged, at most. */
export const MAX_DISTINCT = 100;

/** Replaces Node's printing of process warnings with one log line per distinct warning; returns the undo. */
export function logProcessWarnings(logger: Logger): () => void {
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  const seen = new Set<string>();
  const onWarning = (w: Error & { code?: string }): void => {
    const key = `${w.name}:${w.code ?? ''}:${w.message}`;
    // Past MAX_DISTINCT (warnings whose text varies) the rest are dropped: the set stays bounded.
    if (seen.has(key) || seen.size >= MAX_DISTINCT) return;
    seen.add(key);
    logger.warn('Node.js warning', { warning: w.name, ...(w.code !== undefined ? { code: w.code } : {}), detail: w.message });
  };
  process.on('warning', onWarning);
  return () => {
    process.off('warning', onWarning);
    for (const p of printers) process.on('warning', p);
  };
}

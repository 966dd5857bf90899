// How a client-supplied string appears in a message: JSON-quoted and cut, so a refusal cannot be
// made to say anything its sender wants, at any length.

/** A client-supplied string for a message: JSON-quoted, cut to 64 characters. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

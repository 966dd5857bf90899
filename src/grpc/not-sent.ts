// Which failed gRPC calls never left this process, so the server cannot have acted on them.

/**
 * grpc-js's UNAVAILABLE details for a call that never left this process: no connection could be
 * made, the name did not resolve, or the channel closed first. Any other UNAVAILABLE came after
 * the call was sent ("Connection dropped", a reset stream) or from the server itself.
 */
export function notSent(details: string): boolean {
  return NOT_SENT.test(details);
}

const NOT_SENT = /^(No connection established|Name resolution failed|Channel closed before call started)/;

/** The same, in a message that carries the code first (`14 UNAVAILABLE: No connection established…`, etcd3's errors). */
export function notSentMessage(message: string): boolean {
  const at = message.indexOf('UNAVAILABLE: ');
  return at >= 0 && notSent(message.slice(at + 'UNAVAILABLE: '.length));
}

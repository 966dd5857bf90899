// When the client certificates statemanager presents to etcd and to the ActionController expire.
// Unlike the gRPC server's, they are read once, at start: a renewed Secret takes effect only after
// a restart, and an expired etcd certificate takes every replica off etcd. The gauge lets an alert
// say so days before (found by an operator's audit: nothing warned).
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';

export interface ClientCertificate {
  /** etcd_client or action_controller_client. */
  what: string;
  file: string;
  /** notAfter, Unix seconds. */
  expiresAt: number;
}

/** The configured client certificates with their expiry; a file that cannot be read is left out (the client says why). */
export function clientCertificates(config: { etcd: { tls: { certFile?: string } }; actionController: { tls?: { certFile?: string } } }): ClientCertificate[] {
  const out: ClientCertificate[] = [];
  const add = (what: string, file: string | undefined): void => {
    if (!file) return;
    try {
      out.push({ what, file, expiresAt: Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000 });
    } catch {
      // Unreadable or not a certificate: the client that uses it fails with the reason.
    }
  };
  add('etcd_client', config.etcd.tls.certFile);
  add('action_controller_client', config.actionController.tls?.certFile);
  return out;
}

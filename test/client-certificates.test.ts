// The client certificates' expiry, for the gauge an alert watches (they are read once, at start).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientCertificates } from '../src/observability/client-certificates.js';
import { createTestPki } from './helpers/certs.js';

test('the etcd and ActionController client certificates give their notAfter; none configured, none; an unreadable one is left to its client', async (t) => {
  const pki = await createTestPki();
  t.teardown(() => pki.cleanup());
  const ca = await pki.createCa('ca');
  const etcd = await ca.issue('etcd-client', { cn: 'statemanager', usage: 'client' });
  const ac = await ca.issue('ac-client', { cn: 'statemanager', usage: 'client' });
  const found = clientCertificates({ etcd: { tls: { certFile: etcd.certFile } }, actionController: { tls: { certFile: ac.certFile } } });
  t.deepEqual(found.map((c) => c.what), ['etcd_client', 'action_controller_client']);
  const day = 24 * 3600;
  for (const c of found) t.true(Math.abs(c.expiresAt - (Date.now() / 1000 + day)) < 3600, `${c.what}: issued for a day, expires at ${c.expiresAt}`);
  t.deepEqual(clientCertificates({ etcd: { tls: {} }, actionController: {} }), []);
  const junk = join(pki.dir, 'junk.crt');
  writeFileSync(junk, 'not a certificate');
  t.deepEqual(clientCertificates({ etcd: { tls: { certFile: junk } }, actionController: { tls: { certFile: join(pki.dir, 'missing.crt') } } }), []);
});

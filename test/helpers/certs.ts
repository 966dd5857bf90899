// Test PKI made at run time with the openssl CLI in a temporary directory (never committed):
// certificate authorities and the server and client certificates they issue (EC P-256, valid
// for a day).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = process.env.OPENSSL_BIN ?? '/usr/bin/openssl';

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface IssueOptions {
  /** Subject CN; omitted for a certificate known only by its SANs. */
  cn?: string;
  /** subjectAltName entries, e.g. `DNS:localhost`, `IP:127.0.0.1`, `URI:spiffe://edge/node/n1`. */
  sans?: string[];
  usage: 'server' | 'client';
}

export interface CertificateAuthority extends IssuedCert {
  name: string;
  issue(name: string, o: IssueOptions): Promise<IssuedCert>;
}

export interface TestPki {
  dir: string;
  createCa(name: string): Promise<CertificateAuthority>;
  /** Removes the directory. */
  cleanup(): Promise<void>;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'sm-pki-'));
  const path = (file: string): string => join(dir, file);
  const load = async (certFile: string, keyFile: string): Promise<IssuedCert> => ({
    certFile,
    keyFile,
    cert: await readFile(certFile),
    key: await readFile(keyFile),
  });

  const createCa = async (name: string): Promise<CertificateAuthority> => {
    const certFile = path(`${name}.crt`);
    const keyFile = path(`${name}.key`);
    await run(OPENSSL, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const ca = await load(certFile, keyFile);

    const issue = async (leaf: string, o: IssueOptions): Promise<IssuedCert> => {
      const leafKey = path(`${leaf}.key`);
      const leafCsr = path(`${leaf}.csr`);
      const leafCert = path(`${leaf}.crt`);
      const ext = path(`${leaf}.ext`);
      const lines = [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${o.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ];
      if (o.sans && o.sans.length > 0) lines.push(`subjectAltName=${o.sans.join(',')}`);
      await writeFile(ext, `${lines.join('\n')}\n`);
      await run(OPENSSL, [
        'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', leafKey, '-out', leafCsr, '-subj', o.cn !== undefined ? `/CN=${o.cn}` : '/O=statemanager-test',
      ]);
      await run(OPENSSL, [
        'x509', '-req', '-in', leafCsr, '-CA', certFile, '-CAkey', keyFile,
        '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '1', '-extfile', ext, '-out', leafCert,
      ]);
      return load(leafCert, leafKey);
    };

    return { ...ca, name, issue };
  };

  return {
    dir,
    createCa,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

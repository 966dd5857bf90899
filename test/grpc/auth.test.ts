// The configuration schema, rule matching, identity extraction and tokens, without a server.
import { readFileSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { Authenticator, certificateNames, parseSubjectAltName, type Caller, type PeerAuthContext } from '../../src/auth/identity.js';
import { Authorizer, expandTemplate, matchPattern } from '../../src/auth/policy.js';
import { TokenTable } from '../../src/auth/tokens.js';
import { allowsAnonymous, grpcServerConfigSchema, parseGrpcServerConfig, requiresClientCert } from '../../src/grpc/config.js';
import { hostOf, isLoopback } from '../../src/grpc/server.js';
import { quote, textProblem } from '../../src/grpc/validation.js';

const certTls = { certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem' };

function issues(input: unknown): string[] {
  const r = grpcServerConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('config: defaults', (t) => {
  const c = parseGrpcServerConfig(undefined);
  t.like(c, { addr: '0.0.0.0:47006', maxContainersPerList: 10_000, maxMessageBytes: 4 * 1024 * 1024, conflictRetries: 5 });
  t.deepEqual(c.auth, { tokens: [] });
  t.is(c.tls, undefined);
  t.false(requiresClientCert(c));
  t.true(allowsAnonymous(c));
});

test('config: the documented example parses', (t) => {
  const c = parseGrpcServerConfig({
    addr: '[::]:47006',
    tls: certTls,
    auth: {
      tokens: [{ tokenFile: '/etc/statemanager/tokens/ops', identity: 'ops' }],
      rules: [
        { identities: ['node:*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
        { identities: ['policymanager'], allow: [{ method: 'SendStateChange', kind: 'scenario', from: ['Satisfied'], to: ['Allowed', 'Denied'] }] },
        { identities: ['ops'], allow: [{ method: '*' }] },
      ],
    },
  });
  t.true(requiresClientCert(c));
  t.false(allowsAnonymous(c));
  t.is(c.auth.rules?.length, 3);
});

test('config: every YAML example in docs/grpc.md is valid', (t) => {
  const doc = readFileSync(new URL('../../docs/grpc.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.true(blocks.length >= 2);
  for (const b of blocks) {
    const r = grpcServerConfigSchema.safeParse((parseYaml(b) as { grpc: unknown }).grpc);
    t.true(r.success, r.success ? '' : JSON.stringify(r.error.issues));
  }
});

test('config: mistakes are refused with a path', (t) => {
  t.regex(issues({ addr: 'localhost' }).join(), /^addr: expected host:port/);
  t.regex(issues({ addr: '1.2.3.4:70000' }).join(), /^addr/);
  t.regex(issues({ tls: { certFile: 'c', keyFile: 'k', requireClientCert: true } }).join(), /tls.caFile: requireClientCert needs caFile/);
  t.regex(issues({ auth: { rules: [] } }).join(), /auth.rules: authorization rules need caller identities/);
  t.regex(issues({ auth: { tokens: [{ identity: 'x' }] } }).join(), /exactly one of token or tokenFile/);
  t.regex(issues({ auth: { tokens: [{ identity: 'x', token: 'a', tokenFile: 'b' }] } }).join(), /exactly one of token or tokenFile/);
  const rule = (r: unknown) => issues({ tls: certTls, auth: { rules: [r] } }).join();
  t.regex(rule({ identities: ['node'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] }), /\$\{match\} needs every identity pattern/);
  t.regex(rule({ identities: ['node:*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${node}' }] }), /unknown placeholder \$\{node\}/);
  t.regex(rule({ identities: ['a*b*'], allow: [{ method: '*' }] }), /at most one \*/);
  t.regex(rule({ identities: ['x'], allow: [{ method: 'SendStateChange', to: ['Sleeping'] }] }), /not a model, package or scenario state/);
  t.regex(rule({ identities: ['x'], allow: [{ method: 'SendStateChange', to: ['absent'] }] }), /not a model, package or scenario state/);
  t.regex(rule({ identities: ['x'], allow: [{ method: 'SendAction' }] }), /method/);
  t.regex(rule({ identities: ['x'], allow: [{ method: 'SendStateChange', nodeName: 'n1' }] }), /nodeName/);
  t.regex(issues({ port: 1 }).join(), /port/);
});

test('config: anonymous callers by default only without identity sources', (t) => {
  t.false(allowsAnonymous(parseGrpcServerConfig({ auth: { tokens: [{ token: 't', identity: 'x' }] } })));
  t.true(allowsAnonymous(parseGrpcServerConfig({ auth: { tokens: [{ token: 't', identity: 'x' }], allowAnonymous: true } })));
  t.false(allowsAnonymous(parseGrpcServerConfig({ tls: certTls })));
  const tlsOnly = parseGrpcServerConfig({ tls: { certFile: 'c', keyFile: 'k' } });
  t.false(requiresClientCert(tlsOnly));
  t.true(allowsAnonymous(tlsOnly));
  t.false(requiresClientCert(parseGrpcServerConfig({ tls: { ...certTls, requireClientCert: false } })));
});

test('patterns and templates', (t) => {
  t.is(matchPattern('node:*', 'node:n1'), 'n1');
  t.is(matchPattern('node:*', 'node:'), undefined);
  t.is(matchPattern('node:*', 'xnode:n1'), undefined);
  t.is(matchPattern('*.edge.example', 'n1.edge.example'), 'n1');
  t.is(matchPattern('spiffe://e/*/agent', 'spiffe://e/n1/agent'), 'n1');
  t.is(matchPattern('admin', 'admin'), '');
  t.is(matchPattern('admin', 'admins'), undefined);
  t.is(matchPattern('*', 'anything'), 'anything');
  t.is(expandTemplate('${match}', { match: 'n1', identity: 'node:n1' }), 'n1');
  t.is(expandTemplate('edge-${match}', { match: '${identity}', identity: 'x' }), 'edge-${identity}');
});

const caller = (...names: string[]): Caller => ({ identity: names[0] ?? 'anonymous', names, via: names.length ? 'certificate' : 'anonymous' });

test('authorizer: no rules allow everything, empty rules nothing', (t) => {
  const req = { method: 'SendChangedContainerList', nodeName: 'n1' } as const;
  t.true(new Authorizer(undefined).authorize(caller(), req).allowed);
  t.false(new Authorizer([]).authorize(caller('admin'), req).allowed);
});

test('authorizer: rules by node, kind, name, from and to; any of the caller names may match', (t) => {
  const a = new Authorizer([
    { identities: ['node:*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
    { identities: ['ops'], allow: [{ method: 'SendStateChange', kind: 'scenario', names: ['demo-*'], from: ['absent', 'idle'], to: ['SCENARIO_STATE_IDLE', 'Waiting'] }] },
  ]);
  const list = (nodeName: string) => ({ method: 'SendChangedContainerList', nodeName }) as const;
  const change = (name: string, from: string | undefined, to: string, kind: 'scenario' | 'model' = 'scenario') =>
    ({ method: 'SendStateChange', kind, name, from, to }) as const;
  t.true(a.authorize(caller('node:n1'), list('n1')).allowed);
  t.false(a.authorize(caller('node:n1'), list('n2')).allowed);
  t.true(a.authorize(caller('agent', 'node:n2'), list('n2')).allowed);
  t.false(a.authorize(caller(), list('n1')).allowed);
  t.true(a.authorize(caller('ops'), change('demo-1', undefined, 'Idle')).allowed);
  t.true(a.authorize(caller('ops'), change('demo-1', 'Idle', 'Waiting')).allowed);
  t.false(a.authorize(caller('ops'), change('demo-1', 'Waiting', 'Satisfied')).allowed);
  t.false(a.authorize(caller('ops'), change('prod-1', 'Idle', 'Waiting')).allowed);
  t.false(a.authorize(caller('ops'), change('demo-1', undefined, 'Idle', 'model')).allowed);
  t.false(a.authorize(caller('ops'), list('n1')).allowed);
});

test('certificate names: CN, then DNS and URI SANs, quoted values unquoted', (t) => {
  t.deepEqual(parseSubjectAltName('DNS:a.example, URI:spiffe://edge/node/n1, IP Address:127.0.0.1, DNS:"b, c"'), [
    { type: 'DNS', value: 'a.example' },
    { type: 'URI', value: 'spiffe://edge/node/n1' },
    { type: 'IP Address', value: '127.0.0.1' },
    { type: 'DNS', value: 'b, c' },
  ]);
  const cert = (subject: Record<string, unknown>, san?: string) => ({ subject, subjectaltname: san }) as unknown as PeerCertificate;
  t.deepEqual(certificateNames(cert({ CN: 'node:n1' }, 'DNS:n1.edge, IP Address:10.0.0.1, DNS:node:n1')), ['node:n1', 'n1.edge']);
  t.deepEqual(certificateNames(cert({ CN: ['a', 'b'] })), ['a', 'b']);
  t.deepEqual(certificateNames(cert({ O: 'x' }, 'URI:spiffe://e/n')), ['spiffe://e/n']);
  t.deepEqual(certificateNames(cert({ O: 'x' })), []);
});

function fakeCall(o: { cert?: PeerCertificate; authorization?: string }) {
  const metadata = new grpc.Metadata();
  if (o.authorization !== undefined) metadata.set('authorization', o.authorization);
  const ctx: PeerAuthContext = o.cert ? { transportSecurityType: 'ssl', sslPeerCertificate: o.cert } : {};
  return { metadata, getAuthContext: () => ctx };
}

test('authenticator: certificate, then token, then anonymous if allowed', (t) => {
  const tokens = TokenTable.fromPairs([{ token: 's3cret', identity: 'ops' }]);
  const strict = new Authenticator({ tokens, allowAnonymous: false });
  const cert = { subject: { CN: 'node:n1' } } as unknown as PeerCertificate;
  t.like(strict.authenticate(fakeCall({ cert, authorization: 'Bearer s3cret' })), { ok: true, caller: { identity: 'node:n1', via: 'certificate' } });
  t.like(strict.authenticate(fakeCall({ authorization: 'bearer s3cret' })), { ok: true, caller: { identity: 'ops', via: 'token' } });
  t.like(strict.authenticate(fakeCall({ authorization: 'Bearer nope' })), { ok: false, reason: 'unknown bearer token' });
  t.like(strict.authenticate(fakeCall({ authorization: 's3cret' })), { ok: false });
  t.like(strict.authenticate(fakeCall({})), { ok: false, reason: 'no client certificate and no bearer token' });
  t.like(strict.authenticate(fakeCall({ cert: { subject: {} } as unknown as PeerCertificate })), { ok: false });
  const open = new Authenticator({ tokens: TokenTable.fromPairs([]), allowAnonymous: true });
  // Without configured tokens an authorization header cannot be checked and is ignored.
  t.like(open.authenticate(fakeCall({ authorization: 'Bearer whatever' })), { ok: true, caller: { via: 'anonymous', names: [] } });
});

test('tokens: files are read (first line, trimmed); problems name the file', async (t) => {
  const files: Record<string, string> = { '/t/a': '  tok-a  \nignored\n', '/t/empty': '\n' };
  const read = async (f: string) => {
    const v = files[f];
    if (v === undefined) throw new Error('ENOENT');
    return v;
  };
  const table = await TokenTable.load([{ tokenFile: '/t/a', identity: 'a' }, { token: 'tok-b', identity: 'b' }], read);
  t.is(table.lookup('tok-a'), 'a');
  t.is(table.lookup('tok-b'), 'b');
  t.is(table.lookup('tok-'), undefined);
  await t.throwsAsync(TokenTable.load([{ tokenFile: '/t/missing', identity: 'a' }], read), { message: /cannot read token file \/t\/missing/ });
  await t.throwsAsync(TokenTable.load([{ tokenFile: '/t/empty', identity: 'a' }], read), { message: /token file \/t\/empty is empty/ });
  t.throws(() => TokenTable.fromPairs([{ token: 'x', identity: 'a' }, { token: 'x', identity: 'b' }]), { message: /configured twice/ });
});

test('text checks and quoting', (t) => {
  const rules = { required: true, maxBytes: 4, noSlash: true, noControl: true };
  t.is(textProblem('', rules), 'is empty');
  t.is(textProblem('ab\uFFFD', rules), 'is not valid UTF-8');
  t.is(textProblem('äää', rules), 'is 6 bytes long, more than 4');
  t.is(textProblem('a/b', rules), "contains '/'");
  t.is(textProblem('a\tb', rules), 'contains control characters');
  t.is(textProblem('ok', rules), undefined);
  t.is(quote('x'.repeat(100)), JSON.stringify(`${'x'.repeat(64)}…`));
});

test('loopback detection for the plaintext warning', (t) => {
  t.is(hostOf('[::1]:47006'), '::1');
  t.is(hostOf('0.0.0.0:47006'), '0.0.0.0');
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.true(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) t.false(isLoopback(h), h);
});

// The configuration schema, rule matching, identity extraction and tokens, without a server.
import { readFileSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { Authenticator, certificateNames, parseSubjectAltName, type Caller, type PeerAuthContext } from '../../src/auth/identity.js';
import { ANY_STATE, Authorizer, expandTemplate, matchPattern } from '../../src/auth/policy.js';
import { TokenTable } from '../../src/auth/tokens.js';
import { anonymousAccess, grpcServerConfigSchema, parseGrpcServerConfig, requiresClientCert, streamsShortOfBudgets } from '../../src/grpc/config.js';
import { hostOf, isLoopback } from '../../src/grpc/server.js';
import { quote, textProblem } from '../../src/grpc/validation.js';

const certTls = { certFile: 'c.pem', keyFile: 'k.pem', caFile: 'ca.pem' };
/** An inline token long enough for the schema (32 bytes). */
const TOKEN = 'tok-0123456789abcdef0123456789abcdef';

function issues(input: unknown): string[] {
  const r = grpcServerConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('config: defaults', (t) => {
  const c = parseGrpcServerConfig(undefined);
  t.like(c, { addr: '0.0.0.0:47006', maxContainersPerList: 10_000, maxMessageBytes: 2 * 1024 * 1024, conflictRetries: 5 });
  t.like(c.limits, {
    listBytes: 1024 * 1024,
    maxConcurrentStreams: 128,
    callsPerSecond: 2000,
    callsInFlightPerIdentity: 16,
    writeBytesPerSecond: 64 * 1024,
    writeBurstBytes: 2 * 1024 * 1024,
    authFailuresPerMinute: 20,
  });
  t.deepEqual(c.auth, { tokens: [] });
  t.is(c.tls, undefined);
  t.false(requiresClientCert(c));
  t.is(anonymousAccess(c), 'loopback');
  t.is(streamsShortOfBudgets(c.limits), undefined, 'the defaults leave a stream for the call past a budget');
});

test('config: streams per connection short of one identity\'s budgets are told, below, at and just past subscriptions + calls in flight', (t) => {
  const limits = { subscriptionsPerIdentity: 100, callsInFlightPerIdentity: 16 };
  t.regex(streamsShortOfBudgets({ ...limits, maxConcurrentStreams: 115 }) ?? '', /maxConcurrentStreams \(115\) is not above subscriptionsPerIdentity \(100\) \+ callsInFlightPerIdentity \(16\).*RESOURCE_EXHAUSTED/);
  t.regex(streamsShortOfBudgets({ ...limits, maxConcurrentStreams: 116 }) ?? '', /maxConcurrentStreams \(116\)/);
  t.is(streamsShortOfBudgets({ ...limits, maxConcurrentStreams: 117 }), undefined);
  // Unary calls unbounded (0): only the subscriptions' bound must be heard.
  t.regex(streamsShortOfBudgets({ subscriptionsPerIdentity: 100, callsInFlightPerIdentity: 0, maxConcurrentStreams: 100 }) ?? '', /is not above/);
  t.is(streamsShortOfBudgets({ subscriptionsPerIdentity: 100, callsInFlightPerIdentity: 0, maxConcurrentStreams: 101 }), undefined);
});

test('config: the documented example parses', (t) => {
  const c = parseGrpcServerConfig({
    addr: '[::]:47006',
    tls: certTls,
    auth: {
      tokens: [{ tokenFile: '/etc/statemanager/tokens/ops', identity: 'ops' }],
      rules: [
        { identities: ['cn:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}', placedModelsOnly: true }] },
        { identities: ['cn:policymanager'], allow: [{ method: 'SendStateChange', kind: 'scenario', from: ['Satisfied'], to: ['Allowed', 'Denied'] }] },
        { identities: ['token:ops'], allow: [{ method: 'read' }] },
      ],
    },
  });
  t.true(requiresClientCert(c));
  t.is(anonymousAccess(c), 'never');
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
  t.regex(issues({ auth: { tokens: [{ identity: 'x', token: TOKEN, tokenFile: 'b' }] } }).join(), /exactly one of token or tokenFile/);
  const rule = (r: unknown) => issues({ tls: certTls, auth: { rules: [r] } }).join();
  t.regex(rule({ identities: ['cn:node'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] }), /\$\{match\} needs every identity pattern/);
  t.regex(rule({ identities: ['cn:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${node}' }] }), /unknown placeholder \$\{node\}/);
  t.regex(rule({ identities: ['cn:a*b*'], allow: [{ method: '*' }] }), /at most one \*/);
  t.regex(rule({ identities: ['cn:x'], allow: [{ method: 'SendStateChange', to: ['Sleeping'] }] }), /not a model, package or scenario state/);
  t.regex(rule({ identities: ['cn:x'], allow: [{ method: 'SendStateChange', to: ['absent'] }] }), /not a model, package or scenario state/);
  t.regex(rule({ identities: ['cn:x'], allow: [{ method: 'SendAction' }] }), /method/);
  t.regex(rule({ identities: ['cn:x'], allow: [{ method: 'SendStateChange', nodeName: 'n1' }] }), /nodeName/);
  t.regex(rule({ identities: ['cn:x'], allow: [{ method: 'SendStateChange', placedModelsOnly: true }] }), /placedModelsOnly/);
  // An identity pattern names the kind of name it matches.
  for (const bad of ['node-*', 'policymanager', 'DNS:x', 'spiffe://edge/node/*', 'cn:', 'san:x']) {
    t.regex(rule({ identities: [bad], allow: [{ method: '*' }] }), /must start with the kind of name it matches: cn:, dns:, uri: or token:/, bad);
  }
  for (const good of ['cn:node-*', 'dns:*.edge.example', 'uri:spiffe://edge/node/*', 'token:ops']) t.deepEqual(rule({ identities: [good], allow: [{ method: '*' }] }), '', good);
  // A client CA means client certificates are required: saying otherwise is a contradiction.
  t.regex(issues({ tls: { ...certTls, requireClientCert: false } }).join(), /tls.requireClientCert: a client CA \(caFile\) means client certificates are required/);
  for (const key of ['listBytes', 'maxConcurrentStreams', 'burst', 'writeBurstBytes']) t.regex(issues({ limits: { [key]: 0 } }).join(), new RegExp(`limits.${key}`));
  for (const key of ['callsInFlightPerIdentity', 'writeBytesPerSecond', 'authFailuresPerMinute']) t.regex(issues({ limits: { [key]: -1 } }).join(), new RegExp(`limits.${key}`));
  // A whole list must fit the write burst, or it could never be written.
  t.regex(issues({ limits: { writeBurstBytes: 1000, listBytes: 2000 } }).join(), /limits.writeBurstBytes: writeBurstBytes \(1000\) must be at least listBytes \(2000\)/);
  t.deepEqual(issues({ limits: { writeBurstBytes: 1000, listBytes: 2000, writeBytesPerSecond: 0 } }), []);
  t.regex(issues({ limits: { listByte: 1 } }).join(), /limits/);
  t.regex(issues({ port: 1 }).join(), /port/);
});

test('config: identities without rules are a start-up error naming the fix; an empty list is allowed (it denies everything)', (t) => {
  const fix = /auth.rules: callers have identities \(auth.tokens or tls.caFile\) but no authorization rules: add grpc.auth.rules: .*\(an empty list denies everything/;
  t.regex(issues({ addr: '127.0.0.1:47006', auth: { tokens: [{ token: TOKEN, identity: 'x' }] } }).join(), fix);
  t.regex(issues({ tls: certTls }).join(), fix);
  // Helm renders an unset list as null: the same message, not a type error.
  t.regex(issues({ tls: certTls, auth: { rules: null } }).join(), fix);
  t.deepEqual(issues({ tls: certTls, auth: { rules: [] } }), []);
  t.deepEqual(issues({ addr: '127.0.0.1:47006', auth: { tokens: [{ token: TOKEN, identity: 'x' }], rules: [] } }), []);
  // Without identities there is nothing to write rules about.
  t.deepEqual(issues({}), []);
  t.deepEqual(issues({ auth: { rules: null } }), []);
});

test('config: bearer tokens need TLS beyond loopback and at least 32 bytes', (t) => {
  const tokens = [{ token: TOKEN, identity: 'x' }];
  for (const addr of ['0.0.0.0:47006', '[::]:47006', '10.0.0.5:47006']) {
    t.regex(issues({ addr, auth: { tokens, rules: [] } }).join(), /auth.tokens: bearer tokens need TLS when the server listens beyond loopback .*configure grpc.tls/, addr);
    t.deepEqual(issues({ addr, tls: { certFile: 'c', keyFile: 'k' }, auth: { tokens, rules: [] } }), [], addr);
  }
  for (const addr of ['127.0.0.1:47006', '[::1]:47006', 'localhost:47006']) t.deepEqual(issues({ addr, auth: { tokens, rules: [] } }), [], addr);
  const local = (token: string) => issues({ addr: '127.0.0.1:0', auth: { tokens: [{ token, identity: 'x' }], rules: [] } }).join();
  t.regex(local('t'), /auth.tokens.0.token: a token must be at least 32 bytes long/);
  t.regex(local('x'.repeat(31)), /at least 32 bytes/);
  t.is(local('x'.repeat(32)), '');
  t.is(local('é'.repeat(16)), ''); // bytes, not characters
});

test('config: anonymous callers by default only from loopback and only without identity sources', (t) => {
  const access = (input: unknown) => anonymousAccess(parseGrpcServerConfig(input));
  const tokens = { addr: '127.0.0.1:47006', auth: { tokens: [{ token: TOKEN, identity: 'x' }], rules: [] } };
  t.is(access({}), 'loopback');
  t.is(access(tokens), 'never');
  t.is(access({ ...tokens, auth: { ...tokens.auth, allowAnonymous: true } }), 'anywhere');
  t.is(access({ auth: { allowAnonymous: true } }), 'anywhere');
  t.is(access({ auth: { allowAnonymous: false } }), 'never');
  t.is(access({ tls: certTls, auth: { rules: [] } }), 'never');
  const tlsOnly = parseGrpcServerConfig({ tls: { certFile: 'c', keyFile: 'k' } });
  t.false(requiresClientCert(tlsOnly));
  t.is(anonymousAccess(tlsOnly), 'loopback');
  t.true(requiresClientCert(parseGrpcServerConfig({ tls: { ...certTls, requireClientCert: true }, auth: { rules: [] } })));
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

test('authorizer: no rules serve anonymous callers only (a setup without identities); empty rules deny everything', (t) => {
  const req = { method: 'SendChangedContainerList', nodeName: 'n1', models: [] } as const;
  t.true(new Authorizer(undefined).authorize(caller(), req).allowed);
  // The configuration refuses identities without rules; were one to slip through, it is denied.
  t.false(new Authorizer(undefined).authorize(caller('cn:admin'), req).allowed);
  t.false(new Authorizer(undefined).authorize(caller('token:ops'), req).allowed);
  t.false(new Authorizer([]).authorize(caller('cn:admin'), req).allowed);
});

test('authorizer: before the stored state is read, a change is allowed if some rule allows it from some state', (t) => {
  const a = new Authorizer([
    { identities: ['cn:pm'], allow: [{ method: 'SendStateChange', kind: 'scenario', from: ['Satisfied'], to: ['Allowed'] }] },
    { identities: ['cn:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
  ]);
  const change = (to: string, from: string | undefined | typeof ANY_STATE) => ({ method: 'SendStateChange', kind: 'scenario', name: 's', from, to }) as const;
  t.true(a.authorize(caller('cn:pm'), change('Allowed', ANY_STATE)).allowed);
  t.false(a.authorize(caller('cn:pm'), change('Idle', ANY_STATE)).allowed);
  t.false(a.authorize(caller('cn:node-n1'), change('Allowed', ANY_STATE)).allowed);
  // Once read, the stored state decides.
  t.true(a.authorize(caller('cn:pm'), change('Allowed', 'Satisfied')).allowed);
  t.false(a.authorize(caller('cn:pm'), change('Allowed', 'Waiting')).allowed);
  t.false(a.authorize(caller('cn:pm'), change('Allowed', undefined)).allowed);
});

test('authorizer: rules by node, kind, name, from and to; any of the caller names may match', (t) => {
  const a = new Authorizer([
    { identities: ['cn:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
    { identities: ['token:ops'], allow: [{ method: 'SendStateChange', kind: 'scenario', names: ['demo-*'], from: ['absent', 'idle'], to: ['SCENARIO_STATE_IDLE', 'Waiting'] }] },
    { identities: ['cn:viewer'], allow: [{ method: 'read' }] },
  ]);
  const list = (nodeName: string) => ({ method: 'SendChangedContainerList', nodeName, models: [] }) as const;
  const change = (name: string, from: string | undefined, to: string, kind: 'scenario' | 'model' = 'scenario') =>
    ({ method: 'SendStateChange', kind, name, from, to }) as const;
  t.true(a.authorize(caller('cn:node-n1'), list('n1')).allowed);
  t.false(a.authorize(caller('cn:node-n1'), list('n2')).allowed);
  t.true(a.authorize(caller('cn:agent', 'cn:node-n2'), list('n2')).allowed);
  t.false(a.authorize(caller(), list('n1')).allowed);
  t.true(a.authorize(caller('token:ops'), change('demo-1', undefined, 'Idle')).allowed);
  t.true(a.authorize(caller('token:ops'), change('demo-1', 'Idle', 'Waiting')).allowed);
  t.false(a.authorize(caller('token:ops'), change('demo-1', 'Waiting', 'Satisfied')).allowed);
  t.false(a.authorize(caller('token:ops'), change('prod-1', 'Idle', 'Waiting')).allowed);
  t.false(a.authorize(caller('token:ops'), change('demo-1', undefined, 'Idle', 'model')).allowed);
  t.false(a.authorize(caller('token:ops'), list('n1')).allowed);
  t.true(a.authorize(caller('cn:viewer'), { method: 'read', call: 'GetResourceState' }).allowed);
  t.false(a.authorize(caller('cn:viewer'), list('n1')).allowed);
  t.false(a.authorize(caller('token:ops'), { method: 'read', call: 'GetResourceState' }).allowed);
});

test('authorizer: names of one kind never match patterns of another', (t) => {
  const a = new Authorizer([
    { identities: ['uri:spiffe://edge/node/*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
    { identities: ['cn:policymanager'], allow: [{ method: 'SendStateChange' }] },
  ]);
  const list = { method: 'SendChangedContainerList', nodeName: 'n1', models: [] } as const;
  t.true(a.authorize(caller('uri:spiffe://edge/node/n1'), list).allowed);
  // A DNS SAN spelled like the node's URI SAN, a CN, a token identity: none is the URI.
  t.false(a.authorize(caller('dns:spiffe://edge/node/n1'), list).allowed);
  t.false(a.authorize(caller('cn:spiffe://edge/node/n1'), list).allowed);
  t.false(a.authorize(caller('token:spiffe://edge/node/n1'), list).allowed);
  const change = { method: 'SendStateChange', kind: 'scenario', name: 's', from: undefined, to: 'Idle' } as const;
  t.true(a.authorize(caller('cn:policymanager'), change).allowed);
  t.false(a.authorize(caller('token:policymanager'), change).allowed);
  t.false(a.authorize(caller('dns:policymanager'), change).allowed);
});

test('authorizer: placedModelsOnly allows only models some package places on the node, and fails closed without a placement source', (t) => {
  const rules = [{ identities: ['cn:node-*'], allow: [{ method: 'SendChangedContainerList' as const, nodeName: '${match}', placedModelsOnly: true }] }];
  const placed = new Set(['m1@n1', 'm2@n1', 'm3@n2']);
  const a = new Authorizer(rules, { isModelPlacedOn: (m, n) => placed.has(`${m}@${n}`) });
  const list = (nodeName: string, models: string[]) => ({ method: 'SendChangedContainerList', nodeName, models }) as const;
  t.true(a.authorize(caller('cn:node-n1'), list('n1', ['m1', 'm2'])).allowed);
  t.true(a.authorize(caller('cn:node-n1'), list('n1', [])).allowed);
  t.false(a.authorize(caller('cn:node-n1'), list('n1', ['m1', 'm3'])).allowed);
  t.false(a.authorize(caller('cn:node-n1'), list('n2', ['m3'])).allowed);
  t.false(new Authorizer(rules).authorize(caller('cn:node-n1'), list('n1', ['m1'])).allowed);
});

test('certificate names: CN, then DNS and URI SANs, each with its kind, quoted values unquoted', (t) => {
  t.deepEqual(parseSubjectAltName('DNS:a.example, URI:spiffe://edge/node/n1, IP Address:127.0.0.1, DNS:"b, c"'), [
    { type: 'DNS', value: 'a.example' },
    { type: 'URI', value: 'spiffe://edge/node/n1' },
    { type: 'IP Address', value: '127.0.0.1' },
    { type: 'DNS', value: 'b, c' },
  ]);
  const cert = (subject: Record<string, unknown>, san?: string) => ({ subject, subjectaltname: san }) as unknown as PeerCertificate;
  t.deepEqual(certificateNames(cert({ CN: 'node-n1' }, 'DNS:n1.edge, IP Address:10.0.0.1, DNS:node-n1')), ['cn:node-n1', 'dns:n1.edge', 'dns:node-n1']);
  t.deepEqual(certificateNames(cert({ CN: ['a', 'b'] })), ['cn:a', 'cn:b']);
  t.deepEqual(certificateNames(cert({ O: 'x' }, 'URI:spiffe://e/n')), ['uri:spiffe://e/n']);
  t.deepEqual(certificateNames(cert({ O: 'x' })), []);
});

function fakeCall(o: { cert?: PeerCertificate; authorization?: string; remoteAddress?: string }) {
  const metadata = new grpc.Metadata();
  if (o.authorization !== undefined) metadata.set('authorization', o.authorization);
  const authContext: PeerAuthContext = o.cert ? { transportSecurityType: 'ssl', sslPeerCertificate: o.cert } : {};
  return { metadata, authContext, remoteAddress: o.remoteAddress ?? '127.0.0.1' };
}

test('authenticator: certificate, then token, then anonymous where allowed', (t) => {
  const tokens = TokenTable.fromPairs([{ token: 's3cret', identity: 'ops' }]);
  const strict = new Authenticator({ tokens, anonymous: 'never', isLocal: isLoopback });
  const cert = { subject: { CN: 'node-n1' } } as unknown as PeerCertificate;
  t.like(strict.authenticate(fakeCall({ cert, authorization: 'Bearer s3cret' })), { ok: true, caller: { identity: 'cn:node-n1', via: 'certificate' } });
  t.like(strict.authenticate(fakeCall({ authorization: 'bearer s3cret' })), { ok: true, caller: { identity: 'token:ops', names: ['token:ops'], via: 'token' } });
  t.like(strict.authenticate(fakeCall({ authorization: 'Bearer nope' })), { ok: false, reason: 'unknown bearer token' });
  t.like(strict.authenticate(fakeCall({ authorization: 's3cret' })), { ok: false });
  t.like(strict.authenticate(fakeCall({})), { ok: false, reason: 'no client certificate and no bearer token' });
  t.like(strict.authenticate(fakeCall({ cert: { subject: {} } as unknown as PeerCertificate })), { ok: false });
  const open = new Authenticator({ tokens: TokenTable.fromPairs([]), anonymous: 'anywhere', isLocal: isLoopback });
  // Without configured tokens an authorization header cannot be checked and is ignored.
  t.like(open.authenticate(fakeCall({ authorization: 'Bearer whatever' })), { ok: true, caller: { via: 'anonymous', names: [] } });
  t.like(open.authenticate(fakeCall({ remoteAddress: '10.1.2.3' })), { ok: true, caller: { via: 'anonymous' } });
  const local = new Authenticator({ tokens: TokenTable.fromPairs([]), anonymous: 'loopback', isLocal: isLoopback });
  for (const peer of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) t.like(local.authenticate(fakeCall({ remoteAddress: peer })), { ok: true, caller: { via: 'anonymous' } }, peer);
  for (const peer of ['10.1.2.3', '::ffff:10.1.2.3', 'fe80::1']) {
    const a = local.authenticate(fakeCall({ remoteAddress: peer }));
    t.false(a.ok, peer);
    t.regex(a.ok ? '' : a.reason, /served only from loopback/, peer);
  }
});

test('tokens: files are read (first line, trimmed); problems name the file', async (t) => {
  const tokA = 'tok-a-0123456789abcdef0123456789';
  const files: Record<string, string> = { '/t/a': `  ${tokA}  \nignored\n`, '/t/empty': '\n', '/t/blank-first': `\n${'t'.repeat(40)}\n`, '/t/short': `${'s'.repeat(31)}\n` };
  const read = async (f: string) => {
    const v = files[f];
    if (v === undefined) throw new Error('ENOENT');
    return v;
  };
  const table = await TokenTable.load([{ tokenFile: '/t/a', identity: 'a' }, { token: 'tok-b', identity: 'b' }], read);
  t.is(table.lookup(tokA), 'a');
  t.is(table.lookup('tok-b'), 'b');
  t.is(table.lookup(tokA.slice(0, -1)), undefined);
  await t.throwsAsync(TokenTable.load([{ tokenFile: '/t/missing', identity: 'a' }], read), { message: /cannot read token file \/t\/missing/ });
  await t.throwsAsync(TokenTable.load([{ tokenFile: '/t/empty', identity: 'a' }], read), { message: /token file \/t\/empty is empty/ });
  await t.throwsAsync(TokenTable.load([{ tokenFile: '/t/blank-first', identity: 'a' }], read), { message: 'token file /t/blank-first: its first line is blank (the token is read from the first line)' });
  await t.throwsAsync(TokenTable.load([{ tokenFile: '/t/short', identity: 'a' }], read), { message: /token file \/t\/short holds a token of 31 bytes: at least 32 are needed/ });
  t.throws(() => TokenTable.fromPairs([{ token: 'x', identity: 'a' }, { token: 'x', identity: 'b' }]), { message: /configured twice/ });
});

test('text checks and quoting', (t) => {
  const rules = { required: true, maxBytes: 4, noSlash: true, noControl: true };
  t.is(textProblem('', rules), 'is empty');
  t.is(textProblem('ab\uFFFD', rules), 'is not valid UTF-8');
  t.is(textProblem('äää', rules), 'is 6 bytes long, more than 4');
  t.is(textProblem('a/b', rules), "contains '/'");
  t.is(textProblem('a\tb', rules), 'contains control characters');
  t.is(textProblem('a\u200b', rules), undefined); // only names refuse invisible characters
  t.is(textProblem('a\u200b', { ...rules, noInvisible: true }), 'contains an invisible or separator character (U+200B)');
  t.is(textProblem('ok', rules), undefined);
  // Printable ASCII takes one scan: its length is its size, below, at and past the bound, and the
  // characters around the printable range still take the full checks.
  t.is(textProblem('abc', rules), undefined);
  t.is(textProblem('abcd', rules), undefined);
  t.is(textProblem('abcde', rules), 'is 5 bytes long, more than 4');
  t.is(textProblem('ab/', rules), "contains '/'");
  t.is(textProblem(' ~', rules), undefined);
  t.is(textProblem('a\u007f', rules), 'contains control characters');
  t.is(textProblem('a\u001f', rules), 'contains control characters');
  t.is(textProblem('a\u202e', rules), 'contains bidirectional override characters');
  t.is(textProblem('ää', rules), undefined, 'two characters of 4 bytes: at the bound');
  t.is(quote('x'.repeat(100)), JSON.stringify(`${'x'.repeat(64)}…`));
});

test('loopback detection for the plaintext warning', (t) => {
  t.is(hostOf('[::1]:47006'), '::1');
  t.is(hostOf('0.0.0.0:47006'), '0.0.0.0');
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1', '[::1]']) t.true(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '::ffff:10.0.0.1', '127.example.com']) t.false(isLoopback(h), h);
});

// fast-check arbitraries for the fuzzing suite: hostile text, numbers at the edges of their
// wire types, a request of every RPC (well formed or not), gRPC metadata of odd shapes, and
// authorization rule sets drawn from the configuration schema (src/auth/config.ts).
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { SCENARIO_STATES, PACKAGE_STATES, MODEL_STATES } from '../../domain/states.js';
import type { AuthRule, Permission } from '../../src/auth/config.js';
import * as w from './_wire.js';
import type { Field, Method, Text } from './_wire.js';

// ---- text

/** Names the seeded fleet and the fixed rules use, so that some requests reach real resources. */
export const NODES = ['n1', 'n2', 'n3'];
export const SCENARIOS = ['s1', 's2', 's3'];
export const MODELS = ['m1', 'm2', 'm3'];
export const PACKAGES = ['p1', 'p2'];
const STATES = [...new Set([...SCENARIO_STATES, ...PACKAGE_STATES, ...MODEL_STATES])];
const STATE_SPELLINGS = [...STATES, ...STATES.map((s) => s.toLowerCase()), ...SCENARIO_STATES.map((s) => `SCENARIO_STATE_${s.toUpperCase()}`), 'absent', 'Unknown'];

/** Characters that must not pass as part of a name: controls, bidi overrides, invisibles, separators. */
export const HOSTILE_CHARS = [
  '\u0000', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009b',
  '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069',
  '\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u2060', '\ufeff', '\u061c', '\u2028', '\u2029',
  '\u00a0', '\u3000', '\ud800', '\udfff', '\ufffd', '\u0301', '\ud83d\ude00',
  '/', '..', '*', ':', '${match}', '${identity}', '%2F', '\\', '"', "'", '<', ' ',
];

/** Bytes that are not UTF-8: stray continuation bytes, overlong forms, encoded surrogates, truncated sequences. */
export const INVALID_UTF8 = [
  [0xff], [0xfe], [0x80], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
].map((b) => Buffer.from(b));

const insertAt = (s: string, i: number, piece: string): string => s.slice(0, i % (s.length + 1)) + piece + s.slice(i % (s.length + 1));

/** A string of `n` characters, at sizes around the limits (253, 256, 512 bytes, 16 KiB, 64 KiB, 1 MiB). */
const huge = fc
  .tuple(
    fc.oneof({ weight: 8, arbitrary: fc.constantFrom(253, 254, 256, 257, 512, 513, 16_384, 16_385, 65_537) }, { weight: 1, arbitrary: fc.constantFrom(300_000, 1_100_000) }),
    fc.constantFrom('x', 'é', '\u200b', '😀', '\u0000'),
  )
  .map(([n, c]) => c.repeat(Math.max(1, Math.floor(n / Buffer.byteLength(c)))));

/** Text from `pool`, a decorated entry of it, random Unicode, huge, or bytes that are not UTF-8. */
export function text(pool: readonly string[], o: { huge?: boolean } = {}): fc.Arbitrary<Text> {
  const name = fc.constantFrom(...pool);
  const arbs: fc.WeightedArbitrary<Text>[] = [
    { weight: 6, arbitrary: name },
    { weight: 3, arbitrary: fc.tuple(name, fc.nat(), fc.constantFrom(...HOSTILE_CHARS)).map(([s, i, c]) => insertAt(s, i, c)) },
    { weight: 1, arbitrary: fc.tuple(name, fc.constantFrom(' ', '  ', '\t')).map(([s, p]) => `${p}${s}${p}`) },
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    {
      weight: 2,
      arbitrary: fc.tuple(name, fc.nat(), fc.constantFrom(...INVALID_UTF8)).map(([s, i, bad]) => {
        const b = Buffer.from(s, 'utf8');
        const at = i % (b.length + 1);
        return Buffer.concat([b.subarray(0, at), bad, b.subarray(at)]);
      }),
    },
  ];
  if (o.huge !== false) arbs.push({ weight: 1, arbitrary: huge });
  return fc.oneof(...arbs);
}

// ---- numbers

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
/** int64 values: zero, edges, negative, nanosecond timestamps, anything; all as sent on the wire (two's complement varint). */
export const int64 = fc.oneof(
  fc.constantFrom(0n, 1n, -1n, I64_MAX, I64_MIN, 2n ** 64n - 1n, 2n ** 53n + 1n, BigInt(Date.now()) * 1_000_000n),
  fc.bigInt({ min: I64_MIN, max: I64_MAX }),
);
/** int32 values, including ones whose varint is wider than 32 bits (decoders truncate). */
export const int32 = fc.oneof(fc.constantFrom(0n, 1n, 5n, -1n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 32n + 3n, 2n ** 40n), fc.integer({ min: -2000, max: 2000 }).map(BigInt));
/** Enum numbers: every ResourceType, and numbers no enum has. */
export const enumNumber = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 6 }).map(BigInt) }, { weight: 1, arbitrary: fc.constantFrom(7n, 99n, -1n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 63n - 1n) });
export const bool = fc.oneof(fc.constantFrom(0n, 1n), fc.constantFrom(2n, -1n, 2n ** 40n));

const opt = <T>(a: fc.Arbitrary<T>, freq = 5): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined, freq });
// ---- requests of every RPC

/**
 * The values a request is made of. `plausible`: names of the seeded fleet, states that exist,
 * known enum numbers — requests that get past validation and reach etcd. `hostile`: anything
 * above, at any size.
 */
interface Values {
  text(pool: readonly string[], o?: { huge?: boolean }): fc.Arbitrary<Text>;
  int64: fc.Arbitrary<bigint>;
  int32: fc.Arbitrary<bigint>;
  enumNumber: fc.Arbitrary<bigint>;
  bool: fc.Arbitrary<bigint>;
  /** Weight of the common shapes against the odd ones (many entries, duplicate ids, many containers). */
  many: number;
  plausible: boolean;
}

const HOSTILE: Values = { text, int64, int32, enumNumber, bool, many: 6, plausible: false };
const PLAUSIBLE: Values = {
  text: (pool) => fc.constantFrom(...pool),
  int64: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: BigInt(Date.now() + 86_400_000) * 1_000_000n })),
  int32: fc.integer({ min: 0, max: 20 }).map(BigInt),
  enumNumber: fc.constantFrom(1n, 1n, 1n, 2n, 3n, 0n),
  bool: fc.constantFrom(0n, 1n),
  many: 30,
  plausible: true,
};

function requestsOf(v: Values): Record<Method, fc.Arbitrary<Field[]>> {
  const { text, int64, int32, enumNumber, bool } = v;
  const resourceName = text([...SCENARIOS, ...MODELS, ...PACKAGES, 'ghost']);
  const state = text(STATE_SPELLINGS);
  const anyText = text(['', 'x', 'operator', 'fuzz'], { huge: true });
  const entries = (key: fc.Arbitrary<Text>, value: fc.Arbitrary<Text>, max = 6): fc.Arbitrary<[Text, Text][]> =>
    fc.oneof(
      { weight: v.many, arbitrary: fc.array(fc.tuple(key, value), { maxLength: max }) },
      // Many entries, and the same key many times (the last one wins on decoding).
      { weight: 1, arbitrary: fc.constantFrom(257, 2_000, 20_000).map((n) => Array.from({ length: n }, (_, i): [Text, Text] => [i % 2 === 0 ? 'k' : `k${i}`, 'v'])) },
    );

  // Plausible: a scenario (the only kind that changes on request), its states in any spelling.
  const scenarioStates = [...SCENARIO_STATES, ...SCENARIO_STATES.map((x) => x.toLowerCase()), ...SCENARIO_STATES.map((x) => `SCENARIO_STATE_${x.toUpperCase()}`)];
  const stateChangeMsg = fc.record(
    {
      resource_type: v.plausible ? fc.constant(1n) : opt(enumNumber, 10),
      // New scenarios too, so that a long run still finds transitions to make once s1..s3 are final.
      resource_name: v.plausible ? fc.oneof(text(SCENARIOS), fc.nat({ max: 1_000_000 }).map((n) => `sc-${n}`)) : opt(resourceName, 10),
      current_state: v.plausible ? fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: text(scenarioStates) }) : opt(state, 2),
      target_state: v.plausible ? fc.oneof({ weight: 2, arbitrary: fc.constantFrom('Idle', 'idle', 'Waiting') }, { weight: 1, arbitrary: text(scenarioStates) }) : opt(state, 10),
      transition_id: opt(anyText),
      timestamp_ns: opt(int64),
      source: opt(anyText),
    }
  );

  const MODEL_ANNOTATION = 'io.pullpiri.annotations.model';
  const containerMsg = fc.record(
    {
      id: opt(text(['c1', 'c2', 'c3', 'a/b', 'c4'], { huge: true }), 20),
      names: opt(fc.array(text(['web', 'db']), { maxLength: 4 })),
      image: opt(anyText),
      state: opt(entries(text(['Status', 'Pid']), text(['running', 'dead', 'exited', 'created', 'paused', 'bogus']))),
      config: opt(entries(text(['Env', 'Cmd']), anyText)),
      annotation: opt(
        fc.oneof(
          text(MODELS).map((m): [Text, Text][] => [[MODEL_ANNOTATION, m]]),
          entries(text([MODEL_ANNOTATION, 'io.pullpiri.annotations.package', 'k']), text(MODELS)),
        ),
      ),
      stats: opt(entries(text(['cpu', 'mem']), anyText)),
    }
  );
  const containerListMsg = fc.record({
    node_name: opt(text(NODES), 20),
    containers: fc.oneof(
      { weight: 4 * v.many, arbitrary: fc.uniqueArray(containerMsg, { maxLength: 5, selector: (c) => String(c.id) }) },
      // Duplicate ids.
      { weight: 2, arbitrary: fc.tuple(containerMsg, fc.integer({ min: 2, max: 4 })).map(([c, n]) => Array.from({ length: n }, () => c)) },
      // Many containers.
      { weight: 1, arbitrary: fc.constantFrom(129, 1_000, 10_001).map((n) => Array.from({ length: n }, (_, i) => ({ id: `c${i}` }))) },
    ),
  });

  const revision = fc.oneof(
    fc.constantFrom('0', '1', '-1', '', ' 5', '5 ', '1e3', '0x10', '999999999999999', '9999999999999999', '18446744073709551616', 'NaN'),
    fc.nat({ max: 5000 }).map(String),
  );
  return {
    SendAction: fc.record({ action: opt(anyText) }).map(w.action),
    SendStateChange: stateChangeMsg.map(w.stateChange),
    SendChangedContainerList: containerListMsg.map(w.containerList),
    GetResourceState: fc.record({ resource_type: opt(enumNumber, 10), resource_name: opt(resourceName, 10) }).map(w.resourceStateRequest),
    GetResourceStateHistory: fc
      .record(
        { resource_type: opt(enumNumber, 10), resource_name: opt(resourceName, 10), start_time_ns: opt(int64), end_time_ns: opt(int64), limit: opt(int32) },
      )
      .map(w.historyRequest),
    ListResourcesByState: fc
      .record({ resource_type: opt(enumNumber, 10), state: opt(state), label_selector: opt(entries(text(['app', 'name']), text(['x'])), 2), limit: opt(int32) })
      .map(w.listRequest),
    SubscribeToStateChanges: fc
      .record(
        {
          resource_type: opt(enumNumber, 10),
          filter: opt(
            fc.array(
              fc.oneof(
                { weight: 3, arbitrary: fc.tuple(fc.constant('name'), resourceName) },
                { weight: 3, arbitrary: fc.tuple(fc.constant('since_revision'), revision) },
                { weight: 1, arbitrary: fc.tuple(text(['kind', 'state', 'name ', 'Name', '']), anyText) },
              ),
              { maxLength: 3 },
            ),
          ),
          include_health_events: opt(bool),
          include_recovery_events: opt(bool),
        },
      )
      .map(w.subscriptionRequest),
    // scenario, package, model, source node, target node, policy, reason
    TriggerOffloading: v.plausible
      ? fc
          .tuple(text(SCENARIOS), text(PACKAGES), text(MODELS), text(NODES), text(NODES), text(['policy']), text(['load']))
          .map((f) => w.offloadingRequest(f))
      : fc.array(text([...MODELS, ...PACKAGES, ...NODES, 'policy']), { minLength: 0, maxLength: 7 }).map(w.offloadingRequest),
  };
}

const PLAUSIBLE_REQUESTS = requestsOf(PLAUSIBLE);
const HOSTILE_REQUESTS = requestsOf(HOSTILE);

/** The fields of a request of `method`, well formed on the wire: plausible values, or hostile ones. */
export function requestFields(method: Method): fc.Arbitrary<Field[]> {
  return fc.oneof({ weight: 1, arbitrary: PLAUSIBLE_REQUESTS[method] }, { weight: 1, arbitrary: HOSTILE_REQUESTS[method] });
}

/** A field no message of the service has (or a known number with another wire type), validly encoded. */
const unknownField: fc.Arbitrary<Field> = fc
  .tuple(fc.oneof(fc.integer({ min: 8, max: 200 }), fc.constantFrom(1000, 19_999, 536_870_911)), fc.nat({ max: 4 }), int64, fc.uint8Array({ maxLength: 64 }))
  .map(([no, kind, n, bytes]): Field => {
    switch (kind) {
      case 0:
        return { no, varint: n };
      case 1:
        return { no, fixed64: n };
      case 2:
        return { no, fixed32: Number(BigInt.asUintN(32, n)) };
      case 3:
        return { no, group: [{ no: 1, varint: n }] };
      default:
        return { no, bytes: Buffer.from(bytes) };
    }
  });

/**
 * Wire-level changes a decoder must still read: unknown fields, repeated scalars (the last one
 * wins), fields out of order, a nested message given twice (merged).
 */
export function decodableVariant(fields: fc.Arbitrary<Field[]>): fc.Arbitrary<Field[]> {
  return fc.tuple(fields, fc.nat({ max: 3 }), fc.array(unknownField, { maxLength: 4 }), fc.nat(), fc.boolean()).map(([fs, how, unknown, seed, front]) => {
    const out = [...fs];
    if (how === 1 && out.length > 0) out.push(out[seed % out.length]!);
    if (how === 2) out.reverse();
    return front ? [...unknown, ...out] : [...out, ...unknown];
  });
}

/** Bytes a decoder may not read: truncated, bytes changed, invalid wire types, lengths past the end, groups nested deep. */
export function undecodableBytes(fields: fc.Arbitrary<Field[]>): fc.Arbitrary<Buffer> {
  return fc.tuple(fields.map(w.encode), fc.nat({ max: 5 }), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([b, how, at, junk]) => {
    const i = b.length === 0 ? 0 : at % b.length;
    switch (how) {
      case 0:
        return b.subarray(0, i);
      case 1: {
        const c = Buffer.from(b);
        for (const [k, j] of junk.entries()) if (c.length > 0) c[(i + k) % c.length] = j;
        return c;
      }
      case 2:
        return Buffer.concat([b, Buffer.from([(3 << 3) | 6, 1]), Buffer.from(junk)]); // wire type 6 does not exist
      case 3:
        return Buffer.concat([b, w.varint(BigInt((2 << 3) | 2)), w.varint(2n ** 31n), Buffer.from(junk)]); // a length past the end
      case 4:
        return Buffer.concat([b, Buffer.alloc(20_000, (9 << 3) | 3)]); // 20,000 nested start-groups, never ended
      default:
        return Buffer.concat([Buffer.from(junk), b]);
    }
  });
}

// ---- identities and metadata

export interface Identity {
  /** The token identity as configured (`token:<name>` is the caller), or undefined for none. */
  name: string;
  token: string;
}

export type Credential =
  | { kind: 'token'; identity: Identity; scheme: string; pad: string; suffix: string }
  | { kind: 'anonymous' }
  | { kind: 'unknown-token'; value: string }
  | { kind: 'odd-header'; values: string[] };

export interface MetadataSpec {
  credential: Credential;
  /** Extra headers; a `-bin` key carries bytes. */
  extra: [string, string | Buffer][];
}

const asciiValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
const headerKey = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/).filter((k) => !k.startsWith('grpc-') && !['te', 'content-type', 'user-agent', 'authorization'].includes(k));

/** Who calls and how it says so: a valid token in a well-formed header or not, no header, a token nobody has, headers of odd shapes. */
export function metadataSpec(identities: readonly Identity[]): fc.Arbitrary<MetadataSpec> {
  const credential: fc.Arbitrary<Credential> = fc.oneof(
    {
      weight: 20,
      arbitrary: fc.record({
        kind: fc.constant('token' as const),
        // The first identity (the suite gives its most powerful one) half of the time: calls that reach the handlers.
        identity: fc.oneof({ weight: 2, arbitrary: fc.constant(identities[0]!) }, { weight: 1, arbitrary: fc.constantFrom(...identities) }),
        scheme: fc.oneof({ weight: 12, arbitrary: fc.constant('Bearer ') }, { weight: 1, arbitrary: fc.constantFrom('bearer ', 'BEARER ', 'Bearer  ', 'Bearer', 'Basic ', 'Token ', '') }),
        pad: fc.oneof({ weight: 12, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom(' ', '  ', '\u0020\u0020\u0020') }),
        suffix: fc.oneof({ weight: 12, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('x', ' ', '=', '\\') }),
      }),
    },
    { weight: 2, arbitrary: fc.constant({ kind: 'anonymous' as const }) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(asciiValue, fc.constantFrom('', ' ', 'null', 'Bearer', 'Bearer ', 'x'.repeat(4000)), fc.constantFrom(...identities).map((i) => i.token.slice(0, -1)), fc.constantFrom(...identities).map((i) => i.token.toUpperCase()))
        .map((value) => ({ kind: 'unknown-token' as const, value })),
    },
    {
      weight: 1,
      // One header of an odd shape (grpc-js refuses to send several authorization values;
      // test/fuzz/rpc.test.ts sends those over raw HTTP/2).
      arbitrary: fc
        .tuple(fc.constantFrom(...identities), fc.constantFrom(...identities), fc.constantFrom(', ', ',', ' '))
        .chain(([a, b, sep]) =>
          fc.constantFrom(`Bearer ${a.token}${sep}Bearer ${b.token}`, `Bearer ${a.token}${sep}${b.token}`, `Bearer ${a.token} x`, `Bearer ${a.token}=`, `Bearer ${a.token}   `),
        )
        .map((v) => ({ kind: 'odd-header' as const, values: [v] })),
    },
  );
  const extra = fc.oneof(
    { weight: 6, arbitrary: fc.constant([] as [string, string | Buffer][]) },
    {
      weight: 3,
      arbitrary: fc.array(
        fc.oneof(
          fc.tuple(headerKey, asciiValue),
          fc.tuple(headerKey.map((k) => `${k}-bin`), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b))),
          fc.tuple(fc.constantFrom('authorization-bin', 'x-forwarded-for', 'x-real-ip', 'x-client-cert', 'user-agent', 'x-identity'), asciiValue),
        ),
        { maxLength: 8 },
      ) as fc.Arbitrary<[string, string | Buffer][]>,
    },
    // Many headers (up to about the 8 KiB default metadata limit and past it).
    { weight: 1, arbitrary: fc.constantFrom(50, 150, 400).map((n) => Array.from({ length: n }, (_, i): [string, string] => [`x-fuzz-${i}`, 'v'.repeat(16)])) },
  );
  return fc.record({ credential, extra });
}

export function toMetadata(spec: MetadataSpec): grpc.Metadata {
  const md = new grpc.Metadata();
  const c = spec.credential;
  if (c.kind === 'token') md.set('authorization', `${c.scheme}${c.pad}${c.identity.token}${c.suffix}`);
  if (c.kind === 'unknown-token') md.set('authorization', `Bearer ${c.value}`);
  if (c.kind === 'odd-header') for (const v of c.values) md.add('authorization', v);
  for (const [k, v] of spec.extra) {
    if (k.endsWith('-bin')) md.add(k, Buffer.isBuffer(v) ? v : Buffer.from(v));
    else md.add(k, Buffer.isBuffer(v) ? v.toString('hex') : v);
  }
  return md;
}

/**
 * The callers a credential could possibly authenticate as: for each authorization value that
 * reads as a bearer token (scheme in any case, any white space), the identity whose token it is.
 * Generous on purpose: the properties use it only to say who must NOT get through.
 */
export function possibleCallers(spec: MetadataSpec, identities: readonly Identity[]): string[] {
  const c = spec.credential;
  const values = c.kind === 'token' ? [`${c.scheme}${c.pad}${c.identity.token}${c.suffix}`] : c.kind === 'unknown-token' ? [`Bearer ${c.value}`] : c.kind === 'odd-header' ? c.values : [];
  const out: string[] = [];
  for (const v of values) {
    const token = /^bearer\s+(\S+)\s*$/i.exec(v)?.[1];
    const who = identities.find((i) => i.token === token);
    if (who) out.push(`token:${who.name}`);
  }
  return out;
}

// ---- authorization rules, drawn from the schema of src/auth/config.ts

/** A pattern for `name`: the name itself, or with one run of one or more characters replaced by `*`. */
function patternFor(name: string, cut: [number, number]): string {
  const [a, b] = cut;
  const from = a % (name.length + 1);
  const to = Math.min(name.length, from + 1 + (b % Math.max(1, name.length - from)));
  if (to <= from) return name;
  return `${name.slice(0, from)}*${name.slice(to)}`;
}

export const tokenIdentityName = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('*', 'a*b', 'node-*', 'cn:x', ' ops', 'ops ', '\u200bops') },
);

const fromStates = fc.array(fc.constantFrom('absent', 'Idle', 'Waiting', 'Satisfied', 'Allowed', 'denied', 'SCENARIO_STATE_COMPLETED', 'Running', 'Error'), { minLength: 1, maxLength: 3 });
const toStates = fc.array(fc.constantFrom('Idle', 'Waiting', 'Satisfied', 'Allowed', 'Denied', 'Completed', 'Running', 'Dead'), { minLength: 1, maxLength: 3 });

function permission(withStar: boolean): fc.Arbitrary<Permission> {
  const nodeName = withStar ? fc.constantFrom('${match}', 'n1', '${identity}', 'n-${match}') : fc.constantFrom('n1', 'n2', '${identity}');
  return fc.oneof(
    fc.record(
      { method: fc.constant('SendChangedContainerList' as const), nodeName: opt(nodeName, 2), placedModelsOnly: opt(fc.boolean(), 2) },
      { requiredKeys: ['method'] },
    ).map(stripUndefined),
    fc.record(
      {
        method: fc.constant('SendStateChange' as const),
        kind: opt(fc.constantFrom('scenario', 'model', 'package') as fc.Arbitrary<'scenario' | 'model' | 'package'>, 2),
        names: opt(fc.array(fc.constantFrom('s1', 's*', '*', 'x*y', 'm1'), { minLength: 1, maxLength: 3 }), 2),
        from: opt(fromStates, 2),
        to: opt(toStates, 2),
      },
      { requiredKeys: ['method'] },
    ).map(stripUndefined),
    fc.record({ method: fc.constant('TriggerOffloading' as const), models: opt(fc.array(fc.constantFrom('m1', 'm*', '*', 'x'), { minLength: 1, maxLength: 2 }), 2) }).map(stripUndefined),
    fc.constant({ method: 'read' as const }),
    fc.constant({ method: '*' as const }),
  ) as fc.Arbitrary<Permission>;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Rules over `names` (the configured token identities): patterns that match some of them, or none. */
export function rulesFor(names: readonly string[]): fc.Arbitrary<AuthRule[]> {
  const pattern = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...names), fc.nat(), fc.nat(), fc.boolean()).map(([n, a, b, star]) => `token:${star && !n.includes('*') ? patternFor(n, [a, b]) : n}`) },
    { weight: 1, arbitrary: fc.constantFrom('token:*', 'cn:*', 'dns:x', 'uri:spiffe://x/*', 'token:nobody-has-this') },
  );
  const rule = fc.array(pattern, { minLength: 1, maxLength: 3 }).chain((identities) => {
    const allStar = identities.every((p) => p.includes('*'));
    return fc.array(permission(allStar), { minLength: 1, maxLength: 3 }).map((allow) => ({ identities, allow }));
  });
  return fc.array(rule, { maxLength: 4 });
}

// ---- a reference model of the method-level decision (docs/grpc.md "Authorization")

/** Whether a pattern (kind:literal with at most one `*` standing for one or more characters) matches a name. */
export function patternMatches(pattern: string, name: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === name;
  const before = pattern.slice(0, star);
  const after = pattern.slice(star + 1);
  return name.length > before.length + after.length && name.startsWith(before) && name.endsWith(after);
}

/** The permission a method needs. */
export function permissionOf(method: Method): string {
  if (method === 'SendChangedContainerList' || method === 'SendStateChange' || method === 'SendAction' || method === 'TriggerOffloading') return method;
  return 'read';
}

/** Whether any rule gives `caller` some permission for `method` (finer conditions aside). */
export function mayCall(rules: readonly AuthRule[] | undefined, caller: string, method: Method): boolean {
  const need = permissionOf(method);
  return (rules ?? []).some((r) => r.identities.some((p) => patternMatches(p, caller)) && r.allow.some((a) => a.method === '*' || a.method === need));
}

// The `auth` section of the gRPC server configuration: where caller identities come from
// (bearer tokens; client certificates are configured under `tls`) and what each identity may
// do. Documented with examples in docs/grpc.md.
import { z } from 'zod';
import { parseState, type ResourceKind } from '../../domain/states.js';

/** The methods a permission can name; `*` is every method, `read` every read of contract section 5. */
export const AUTHORIZED_METHODS = ['SendChangedContainerList', 'SendStateChange', 'TriggerOffloading', 'read'] as const;
export type AuthorizedMethod = (typeof AUTHORIZED_METHODS)[number];

/** The read-only calls of contract section 5, all covered by the `read` permission. */
export const READ_METHODS = ['GetResourceState', 'GetResourceStateHistory', 'ListResourcesByState', 'SubscribeToStateChanges'] as const;

/**
 * The kinds of name an identity pattern must start with, so that one kind can never pass for
 * another (a DNS SAN for a node's URI SAN, a token's identity for a certificate's CN).
 */
export const IDENTITY_KINDS = ['cn', 'dns', 'uri', 'token'] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

/** Placeholders a `nodeName` template may use. */
export const TEMPLATE_VARIABLES = ['match', 'identity'] as const;

const KINDS: readonly ResourceKind[] = ['scenario', 'model', 'package'];

/** An identity or name pattern: literal text with at most one `*` (one or more characters). */
const pattern = z
  .string()
  .min(1)
  .refine((s) => s.split('*').length <= 2, { message: 'a pattern has at most one *' });

const identityPattern = pattern.superRefine((s, ctx) => {
  const kind = s.slice(0, s.indexOf(':'));
  if (!(IDENTITY_KINDS as readonly string[]).includes(kind) || s.length === kind.length + 1) {
    ctx.addIssue({
      code: 'custom',
      message: `identity pattern ${JSON.stringify(s)} must start with the kind of name it matches: cn:, dns:, uri: or token: (e.g. "cn:node-*", "uri:spiffe://edge/node/*", "token:policymanager")`,
    });
  }
});

const template = z
  .string()
  .min(1)
  .superRefine((s, ctx) => {
    for (const m of s.matchAll(/\$\{([^}]*)\}/g)) {
      if (!(TEMPLATE_VARIABLES as readonly string[]).includes(m[1] ?? '')) {
        ctx.addIssue({ code: 'custom', message: `unknown placeholder \${${m[1]}} (use \${match} or \${identity})` });
      }
    }
  });

const isKnownState = (s: string): boolean => KINDS.some((k) => parseState(k, s) !== undefined);

const toState = z.string().refine(isKnownState, { message: 'not a model, package or scenario state' });
const fromState = z
  .string()
  .refine((s) => s.trim().toLowerCase() === 'absent' || isKnownState(s), {
    message: 'not a model, package or scenario state, nor "absent"',
  });

const containerListPermission = z
  .object({
    method: z.literal('SendChangedContainerList'),
    /** Only this node (after placeholder substitution); any node when omitted. */
    nodeName: template.optional(),
    /**
     * Only containers of models that some package places on the node sent (`spec.models[].node`
     * in its definition): a compromised node cannot report another node's model dead.
     */
    placedModelsOnly: z.boolean().optional(),
  })
  .strict();

const stateChangePermission = z
  .object({
    method: z.literal('SendStateChange'),
    /** Any kind when omitted (model and package requests are refused anyway: derived states). */
    kind: z.enum(['scenario', 'model', 'package']).optional(),
    /** Resource name patterns; any name when omitted. */
    names: z.array(pattern).min(1).optional(),
    /** Allowed stored states before the change ("absent" for none); any when omitted. */
    from: z.array(fromState).min(1).optional(),
    /** Allowed target states; any when omitted. */
    to: z.array(toState).min(1).optional(),
  })
  .strict();

/**
 * Moving models between nodes (the policy manager's TriggerOffloading): a permission of its
 * own, so that no node agent or operator holding another permission can move a model.
 */
const offloadingPermission = z
  .object({
    method: z.literal('TriggerOffloading'),
    /** Model name patterns; any model when omitted. */
    models: z.array(pattern).min(1).optional(),
  })
  .strict();

const everythingPermission = z.object({ method: z.literal('*') }).strict();
/** Every read-only call of contract section 5 (state, history, list, subscribe). */
const readPermission = z.object({ method: z.literal('read') }).strict();

export const permissionSchema = z.discriminatedUnion('method', [
  containerListPermission,
  stateChangePermission,
  offloadingPermission,
  readPermission,
  everythingPermission,
]);
export type Permission = z.output<typeof permissionSchema>;

export const authRuleSchema = z
  .object({
    /** Identity patterns the rule applies to, e.g. `cn:node-*` or `token:policymanager`. */
    identities: z.array(identityPattern).min(1),
    allow: z.array(permissionSchema).min(1),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const usesMatch = rule.allow.some((p) => p.method === 'SendChangedContainerList' && p.nodeName?.includes('${match}'));
    if (usesMatch && rule.identities.some((p) => !p.includes('*'))) {
      ctx.addIssue({ code: 'custom', path: ['identities'], message: '${match} needs every identity pattern of the rule to contain *' });
    }
  });
export type AuthRule = z.output<typeof authRuleSchema>;

/** Shorter tokens can be guessed; 32 bytes is what `openssl rand -hex 16` prints. */
export const MIN_TOKEN_BYTES = 32;

export const tokenSchema = z
  .object({
    identity: z.string().min(1),
    token: z
      .string()
      .refine((t) => Buffer.byteLength(t, 'utf8') >= MIN_TOKEN_BYTES, {
        message: `a token must be at least ${MIN_TOKEN_BYTES} bytes long (make one with: openssl rand -hex 32)`,
      })
      .optional(),
    tokenFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.token === undefined) !== (t.tokenFile === undefined), {
    message: 'give exactly one of token or tokenFile',
  });
export type TokenConfig = z.output<typeof tokenSchema>;

export const authConfigSchema = z
  .object({
    /** Bearer tokens (`authorization: Bearer <token>` metadata) and the identities they stand for. */
    tokens: z.array(tokenSchema).default([]),
    /**
     * Whether callers with neither a client certificate nor a token are served. true: from
     * anywhere (logged as a warning at start, and the `statemanager_grpc_anonymous_allowed`
     * gauge is 1). false: never. Omitted: only from loopback peers, and only when no identity
     * source is configured (no tokens, no client CA).
     */
    allowAnonymous: z.boolean().optional(),
    /**
     * What each identity may do; whatever no rule allows is denied (an empty list denies
     * everything). Required once any identity source exists (tokens or a client CA); omitted
     * only when callers are anonymous. `null` (as Helm renders an unset value) counts as omitted.
     */
    rules: z.preprocess((v) => (v === null ? undefined : v), z.array(authRuleSchema).optional()),
  })
  .strict();
export type AuthConfig = z.output<typeof authConfigSchema>;

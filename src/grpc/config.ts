// The `grpc` section of statemanager's configuration (embedded by the application's config
// module). Documented in docs/grpc.md.
import { z } from 'zod';
import { hostPortSchema as addr } from '../address.js';
import { authConfigSchema } from '../auth/config.js';

export const DEFAULT_GRPC_ADDR = '0.0.0.0:47006';

export const tlsConfigSchema = z
  .object({
    /** PEM server certificate (chain). */
    certFile: z.string().min(1),
    /** PEM private key of the server certificate. */
    keyFile: z.string().min(1),
    /** PEM CA bundle client certificates must chain to (mutual TLS). */
    caFile: z.string().min(1).optional(),
    /** Refuse clients without a valid certificate at the TLS layer. Default: true when caFile is set. */
    requireClientCert: z.boolean().optional(),
  })
  .strict()
  .refine((t) => !(t.requireClientCert === true && t.caFile === undefined), {
    message: 'requireClientCert needs caFile',
    path: ['caFile'],
  });
export type GrpcTlsConfig = z.output<typeof tlsConfigSchema>;

export const grpcServerConfigSchema = z
  .object({
    addr: addr.default(DEFAULT_GRPC_ADDR),
    /** SendChangedContainerList refuses longer lists (INVALID_ARGUMENT). */
    maxContainersPerList: z.number().int().positive().default(10_000),
    /** Largest request message accepted (grpc-js answers RESOURCE_EXHAUSTED above it). */
    maxMessageBytes: z.number().int().positive().default(4 * 1024 * 1024),
    /**
     * etcd's --max-txn-ops (default 128). SendChangedContainerList guards each unchanged
     * container with its own compare only while they fit.
     */
    etcdMaxTxnOps: z.number().int().min(2).default(128),
    /** Attempts of an etcd compare-and-swap that keeps losing to concurrent writers. */
    conflictRetries: z.number().int().min(1).max(100).default(5),
    /** Plaintext when omitted. */
    tls: tlsConfigSchema.optional(),
    auth: authConfigSchema.default({ tokens: [] }),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.auth.rules !== undefined && c.auth.tokens.length === 0 && !requiresClientCert(c)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'rules'],
        message: 'authorization rules need caller identities: configure auth.tokens or tls.caFile (mutual TLS)',
      });
    }
  });

export type GrpcServerConfig = z.output<typeof grpcServerConfigSchema>;
export type GrpcServerConfigInput = z.input<typeof grpcServerConfigSchema>;

/** Whether clients must present a certificate signed by tls.caFile. */
export function requiresClientCert(c: Pick<GrpcServerConfig, 'tls'>): boolean {
  return c.tls !== undefined && (c.tls.requireClientCert ?? c.tls.caFile !== undefined);
}

/** Whether callers with neither certificate nor token are served. */
export function allowsAnonymous(c: Pick<GrpcServerConfig, 'tls' | 'auth'>): boolean {
  return c.auth.allowAnonymous ?? (c.auth.tokens.length === 0 && !requiresClientCert(c));
}

export function parseGrpcServerConfig(input: unknown): GrpcServerConfig {
  return grpcServerConfigSchema.parse(input ?? {});
}

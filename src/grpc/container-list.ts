// SendChangedContainerList: validation, authorization for the node named, then the etcd sync.
// Refusals are gRPC statuses (the response message has no error field).
import { status } from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { ContainerList__Output } from '../generated/monitoringserver/ContainerList.js';
import type { KeyLayout } from '../../reconcilers/keys.js';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer } from '../auth/policy.js';
import { ContainerSyncConflictError, syncContainerList } from './container-sync.js';
import { classifyEtcdError } from '../etcd/errors.js';
import { validateContainerList } from './validation.js';
import { errorMessage } from '../../controller/errors.js';

export interface ContainerListDeps {
  client: Etcd3;
  keys: KeyLayout;
  authorizer: Authorizer;
  logger: Logger;
  requestTimeoutMs: number;
  maxAttempts: number;
  maxContainersPerList: number;
  maxTxnOps: number;
}

export interface ContainerListCall {
  caller: Caller;
  request: ContainerList__Output;
  callerDeadline?: number;
}

export type ContainerListOutcome = { ok: true; resp: string } | { ok: false; code: status; message: string };

export async function handleContainerList(deps: ContainerListDeps, call: ContainerListCall): Promise<ContainerListOutcome> {
  const v = validateContainerList(call.request, deps.maxContainersPerList);
  if (!v.ok) return { ok: false, code: status.INVALID_ARGUMENT, message: v.message };
  const { nodeName, containers } = v.value;

  const decision = deps.authorizer.authorize(call.caller, { method: 'SendChangedContainerList', nodeName });
  if (!decision.allowed) {
    deps.logger.warn('gRPC call denied', {
      method: 'SendChangedContainerList',
      identity: call.caller.identity,
      via: call.caller.via,
      nodeName,
    });
    return { ok: false, code: status.PERMISSION_DENIED, message: `${call.caller.identity} may not send the container list of node ${nodeName}` };
  }

  try {
    const r = await syncContainerList(
      {
        client: deps.client,
        keys: deps.keys,
        requestTimeoutMs: deps.requestTimeoutMs,
        maxAttempts: deps.maxAttempts,
        maxTxnOps: deps.maxTxnOps,
        ...(call.callerDeadline !== undefined ? { callerDeadline: call.callerDeadline } : {}),
      },
      nodeName,
      containers,
    );
    const resp = `node ${nodeName}: ${r.put} put, ${r.deleted} deleted, ${r.unchanged} unchanged`;
    deps.logger.debug('container list applied', {
      nodeName,
      put: r.put,
      deleted: r.deleted,
      unchanged: r.unchanged,
      attempts: r.attempts,
      revision: r.revision,
      identity: call.caller.identity,
    });
    return { ok: true, resp };
  } catch (err) {
    const message = errorMessage(err);
    deps.logger.error('SendChangedContainerList failed', { nodeName, identity: call.caller.identity, error: message });
    if (err instanceof ContainerSyncConflictError) return { ok: false, code: status.ABORTED, message };
    switch (classifyEtcdError(err)) {
      case 'timeout':
        return { ok: false, code: status.DEADLINE_EXCEEDED, message: 'etcd did not answer in time; send the list again' };
      case 'unavailable':
        return { ok: false, code: status.UNAVAILABLE, message: 'etcd is unavailable; send the list again' };
      case 'too-large':
        return {
          ok: false,
          code: status.RESOURCE_EXHAUSTED,
          message: `node ${nodeName}: the change exceeds etcd's transaction limits (--max-txn-ops, --max-request-bytes); nothing was written`,
        };
      default:
        return { ok: false, code: status.INTERNAL, message: 'internal error' };
    }
  }
}

import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ActionControllerConnectionClient as _actioncontroller_ActionControllerConnectionClient, ActionControllerConnectionDefinition as _actioncontroller_ActionControllerConnectionDefinition } from './actioncontroller/ActionControllerConnection.js';
import type { OffloadModelRequest as _actioncontroller_OffloadModelRequest, OffloadModelRequest__Output as _actioncontroller_OffloadModelRequest__Output } from './actioncontroller/OffloadModelRequest.js';
import type { OffloadModelResponse as _actioncontroller_OffloadModelResponse, OffloadModelResponse__Output as _actioncontroller_OffloadModelResponse__Output } from './actioncontroller/OffloadModelResponse.js';
import type { ReconcileRequest as _actioncontroller_ReconcileRequest, ReconcileRequest__Output as _actioncontroller_ReconcileRequest__Output } from './actioncontroller/ReconcileRequest.js';
import type { ReconcileResponse as _actioncontroller_ReconcileResponse, ReconcileResponse__Output as _actioncontroller_ReconcileResponse__Output } from './actioncontroller/ReconcileResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  actioncontroller: {
    ActionControllerConnection: SubtypeConstructor<typeof grpc.Client, _actioncontroller_ActionControllerConnectionClient> & { service: _actioncontroller_ActionControllerConnectionDefinition }
    OffloadModelRequest: MessageTypeDefinition<_actioncontroller_OffloadModelRequest, _actioncontroller_OffloadModelRequest__Output>
    OffloadModelResponse: MessageTypeDefinition<_actioncontroller_OffloadModelResponse, _actioncontroller_OffloadModelResponse__Output>
    PodStatus: EnumTypeDefinition
    ReconcileRequest: MessageTypeDefinition<_actioncontroller_ReconcileRequest, _actioncontroller_ReconcileRequest__Output>
    ReconcileResponse: MessageTypeDefinition<_actioncontroller_ReconcileResponse, _actioncontroller_ReconcileResponse__Output>
  }
}


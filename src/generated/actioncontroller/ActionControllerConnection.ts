// Original file: src/proto/actioncontroller.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { OffloadModelRequest as _actioncontroller_OffloadModelRequest, OffloadModelRequest__Output as _actioncontroller_OffloadModelRequest__Output } from '../actioncontroller/OffloadModelRequest.js';
import type { OffloadModelResponse as _actioncontroller_OffloadModelResponse, OffloadModelResponse__Output as _actioncontroller_OffloadModelResponse__Output } from '../actioncontroller/OffloadModelResponse.js';
import type { ReconcileRequest as _actioncontroller_ReconcileRequest, ReconcileRequest__Output as _actioncontroller_ReconcileRequest__Output } from '../actioncontroller/ReconcileRequest.js';
import type { ReconcileResponse as _actioncontroller_ReconcileResponse, ReconcileResponse__Output as _actioncontroller_ReconcileResponse__Output } from '../actioncontroller/ReconcileResponse.js';

export interface ActionControllerConnectionClient extends grpc.Client {
  OffloadModel(argument: _actioncontroller_OffloadModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  OffloadModel(argument: _actioncontroller_OffloadModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  OffloadModel(argument: _actioncontroller_OffloadModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  OffloadModel(argument: _actioncontroller_OffloadModelRequest, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  offloadModel(argument: _actioncontroller_OffloadModelRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  offloadModel(argument: _actioncontroller_OffloadModelRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  offloadModel(argument: _actioncontroller_OffloadModelRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  offloadModel(argument: _actioncontroller_OffloadModelRequest, callback: grpc.requestCallback<_actioncontroller_OffloadModelResponse__Output>): grpc.ClientUnaryCall;
  
  Reconcile(argument: _actioncontroller_ReconcileRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  Reconcile(argument: _actioncontroller_ReconcileRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  Reconcile(argument: _actioncontroller_ReconcileRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  Reconcile(argument: _actioncontroller_ReconcileRequest, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  reconcile(argument: _actioncontroller_ReconcileRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  reconcile(argument: _actioncontroller_ReconcileRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  reconcile(argument: _actioncontroller_ReconcileRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  reconcile(argument: _actioncontroller_ReconcileRequest, callback: grpc.requestCallback<_actioncontroller_ReconcileResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface ActionControllerConnectionHandlers extends grpc.UntypedServiceImplementation {
  OffloadModel: grpc.handleUnaryCall<_actioncontroller_OffloadModelRequest__Output, _actioncontroller_OffloadModelResponse>;
  
  Reconcile: grpc.handleUnaryCall<_actioncontroller_ReconcileRequest__Output, _actioncontroller_ReconcileResponse>;
  
}

export interface ActionControllerConnectionDefinition extends grpc.ServiceDefinition {
  OffloadModel: MethodDefinition<_actioncontroller_OffloadModelRequest, _actioncontroller_OffloadModelResponse, _actioncontroller_OffloadModelRequest__Output, _actioncontroller_OffloadModelResponse__Output>
  Reconcile: MethodDefinition<_actioncontroller_ReconcileRequest, _actioncontroller_ReconcileResponse, _actioncontroller_ReconcileRequest__Output, _actioncontroller_ReconcileResponse__Output>
}

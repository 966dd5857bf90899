// Original file: src/proto/statemanager.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Action as _statemanager_Action, Action__Output as _statemanager_Action__Output } from '../statemanager/Action.js';
import type { ContainerList as _monitoringserver_ContainerList, ContainerList__Output as _monitoringserver_ContainerList__Output } from '../monitoringserver/ContainerList.js';
import type { Response as _statemanager_Response, Response__Output as _statemanager_Response__Output } from '../statemanager/Response.js';
import type { SendContainerListResponse as _monitoringserver_SendContainerListResponse, SendContainerListResponse__Output as _monitoringserver_SendContainerListResponse__Output } from '../monitoringserver/SendContainerListResponse.js';
import type { StateChange as _statemanager_StateChange, StateChange__Output as _statemanager_StateChange__Output } from '../statemanager/StateChange.js';
import type { StateChangeResponse as _statemanager_StateChangeResponse, StateChangeResponse__Output as _statemanager_StateChangeResponse__Output } from '../statemanager/StateChangeResponse.js';

export interface StateManagerConnectionClient extends grpc.Client {
  SendAction(argument: _statemanager_Action, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  SendAction(argument: _statemanager_Action, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  SendAction(argument: _statemanager_Action, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  SendAction(argument: _statemanager_Action, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  sendAction(argument: _statemanager_Action, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  sendAction(argument: _statemanager_Action, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  sendAction(argument: _statemanager_Action, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  sendAction(argument: _statemanager_Action, callback: grpc.requestCallback<_statemanager_Response__Output>): grpc.ClientUnaryCall;
  
  SendChangedContainerList(argument: _monitoringserver_ContainerList, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  SendChangedContainerList(argument: _monitoringserver_ContainerList, metadata: grpc.Metadata, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  SendChangedContainerList(argument: _monitoringserver_ContainerList, options: grpc.CallOptions, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  SendChangedContainerList(argument: _monitoringserver_ContainerList, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  sendChangedContainerList(argument: _monitoringserver_ContainerList, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  sendChangedContainerList(argument: _monitoringserver_ContainerList, metadata: grpc.Metadata, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  sendChangedContainerList(argument: _monitoringserver_ContainerList, options: grpc.CallOptions, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  sendChangedContainerList(argument: _monitoringserver_ContainerList, callback: grpc.requestCallback<_monitoringserver_SendContainerListResponse__Output>): grpc.ClientUnaryCall;
  
  SendStateChange(argument: _statemanager_StateChange, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  SendStateChange(argument: _statemanager_StateChange, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  SendStateChange(argument: _statemanager_StateChange, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  SendStateChange(argument: _statemanager_StateChange, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  sendStateChange(argument: _statemanager_StateChange, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  sendStateChange(argument: _statemanager_StateChange, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  sendStateChange(argument: _statemanager_StateChange, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  sendStateChange(argument: _statemanager_StateChange, callback: grpc.requestCallback<_statemanager_StateChangeResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface StateManagerConnectionHandlers extends grpc.UntypedServiceImplementation {
  SendAction: grpc.handleUnaryCall<_statemanager_Action__Output, _statemanager_Response>;
  
  SendChangedContainerList: grpc.handleUnaryCall<_monitoringserver_ContainerList__Output, _monitoringserver_SendContainerListResponse>;
  
  SendStateChange: grpc.handleUnaryCall<_statemanager_StateChange__Output, _statemanager_StateChangeResponse>;
  
}

export interface StateManagerConnectionDefinition extends grpc.ServiceDefinition {
  SendAction: MethodDefinition<_statemanager_Action, _statemanager_Response, _statemanager_Action__Output, _statemanager_Response__Output>
  SendChangedContainerList: MethodDefinition<_monitoringserver_ContainerList, _monitoringserver_SendContainerListResponse, _monitoringserver_ContainerList__Output, _monitoringserver_SendContainerListResponse__Output>
  SendStateChange: MethodDefinition<_statemanager_StateChange, _statemanager_StateChangeResponse, _statemanager_StateChange__Output, _statemanager_StateChangeResponse__Output>
}

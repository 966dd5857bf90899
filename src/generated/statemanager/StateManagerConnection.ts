// Original file: src/proto/statemanager.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Action as _statemanager_Action, Action__Output as _statemanager_Action__Output } from '../statemanager/Action.js';
import type { ContainerList as _monitoringserver_ContainerList, ContainerList__Output as _monitoringserver_ContainerList__Output } from '../monitoringserver/ContainerList.js';
import type { ListResourcesByStateRequest as _statemanager_ListResourcesByStateRequest, ListResourcesByStateRequest__Output as _statemanager_ListResourcesByStateRequest__Output } from '../statemanager/ListResourcesByStateRequest.js';
import type { ListResourcesByStateResponse as _statemanager_ListResourcesByStateResponse, ListResourcesByStateResponse__Output as _statemanager_ListResourcesByStateResponse__Output } from '../statemanager/ListResourcesByStateResponse.js';
import type { OffloadingRequest as _statemanager_OffloadingRequest, OffloadingRequest__Output as _statemanager_OffloadingRequest__Output } from '../statemanager/OffloadingRequest.js';
import type { OffloadingResponse as _statemanager_OffloadingResponse, OffloadingResponse__Output as _statemanager_OffloadingResponse__Output } from '../statemanager/OffloadingResponse.js';
import type { ResourceStateHistoryRequest as _statemanager_ResourceStateHistoryRequest, ResourceStateHistoryRequest__Output as _statemanager_ResourceStateHistoryRequest__Output } from '../statemanager/ResourceStateHistoryRequest.js';
import type { ResourceStateHistoryResponse as _statemanager_ResourceStateHistoryResponse, ResourceStateHistoryResponse__Output as _statemanager_ResourceStateHistoryResponse__Output } from '../statemanager/ResourceStateHistoryResponse.js';
import type { ResourceStateRequest as _statemanager_ResourceStateRequest, ResourceStateRequest__Output as _statemanager_ResourceStateRequest__Output } from '../statemanager/ResourceStateRequest.js';
import type { ResourceStateResponse as _statemanager_ResourceStateResponse, ResourceStateResponse__Output as _statemanager_ResourceStateResponse__Output } from '../statemanager/ResourceStateResponse.js';
import type { Response as _statemanager_Response, Response__Output as _statemanager_Response__Output } from '../statemanager/Response.js';
import type { SendContainerListResponse as _monitoringserver_SendContainerListResponse, SendContainerListResponse__Output as _monitoringserver_SendContainerListResponse__Output } from '../monitoringserver/SendContainerListResponse.js';
import type { StateChange as _statemanager_StateChange, StateChange__Output as _statemanager_StateChange__Output } from '../statemanager/StateChange.js';
import type { StateChangeEvent as _statemanager_StateChangeEvent, StateChangeEvent__Output as _statemanager_StateChangeEvent__Output } from '../statemanager/StateChangeEvent.js';
import type { StateChangeResponse as _statemanager_StateChangeResponse, StateChangeResponse__Output as _statemanager_StateChangeResponse__Output } from '../statemanager/StateChangeResponse.js';
import type { StateChangeSubscriptionRequest as _statemanager_StateChangeSubscriptionRequest, StateChangeSubscriptionRequest__Output as _statemanager_StateChangeSubscriptionRequest__Output } from '../statemanager/StateChangeSubscriptionRequest.js';

export interface StateManagerConnectionClient extends grpc.Client {
  GetResourceState(argument: _statemanager_ResourceStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  GetResourceState(argument: _statemanager_ResourceStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  GetResourceState(argument: _statemanager_ResourceStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  GetResourceState(argument: _statemanager_ResourceStateRequest, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  getResourceState(argument: _statemanager_ResourceStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  getResourceState(argument: _statemanager_ResourceStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  getResourceState(argument: _statemanager_ResourceStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  getResourceState(argument: _statemanager_ResourceStateRequest, callback: grpc.requestCallback<_statemanager_ResourceStateResponse__Output>): grpc.ClientUnaryCall;
  
  GetResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  GetResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  GetResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  GetResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  getResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  getResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  getResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  getResourceStateHistory(argument: _statemanager_ResourceStateHistoryRequest, callback: grpc.requestCallback<_statemanager_ResourceStateHistoryResponse__Output>): grpc.ClientUnaryCall;
  
  ListResourcesByState(argument: _statemanager_ListResourcesByStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  ListResourcesByState(argument: _statemanager_ListResourcesByStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  ListResourcesByState(argument: _statemanager_ListResourcesByStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  ListResourcesByState(argument: _statemanager_ListResourcesByStateRequest, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  listResourcesByState(argument: _statemanager_ListResourcesByStateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  listResourcesByState(argument: _statemanager_ListResourcesByStateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  listResourcesByState(argument: _statemanager_ListResourcesByStateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  listResourcesByState(argument: _statemanager_ListResourcesByStateRequest, callback: grpc.requestCallback<_statemanager_ListResourcesByStateResponse__Output>): grpc.ClientUnaryCall;
  
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
  
  SubscribeToStateChanges(argument: _statemanager_StateChangeSubscriptionRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_statemanager_StateChangeEvent__Output>;
  SubscribeToStateChanges(argument: _statemanager_StateChangeSubscriptionRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_statemanager_StateChangeEvent__Output>;
  subscribeToStateChanges(argument: _statemanager_StateChangeSubscriptionRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_statemanager_StateChangeEvent__Output>;
  subscribeToStateChanges(argument: _statemanager_StateChangeSubscriptionRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_statemanager_StateChangeEvent__Output>;
  
  TriggerOffloading(argument: _statemanager_OffloadingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  TriggerOffloading(argument: _statemanager_OffloadingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  TriggerOffloading(argument: _statemanager_OffloadingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  TriggerOffloading(argument: _statemanager_OffloadingRequest, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  triggerOffloading(argument: _statemanager_OffloadingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  triggerOffloading(argument: _statemanager_OffloadingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  triggerOffloading(argument: _statemanager_OffloadingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  triggerOffloading(argument: _statemanager_OffloadingRequest, callback: grpc.requestCallback<_statemanager_OffloadingResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface StateManagerConnectionHandlers extends grpc.UntypedServiceImplementation {
  GetResourceState: grpc.handleUnaryCall<_statemanager_ResourceStateRequest__Output, _statemanager_ResourceStateResponse>;
  
  GetResourceStateHistory: grpc.handleUnaryCall<_statemanager_ResourceStateHistoryRequest__Output, _statemanager_ResourceStateHistoryResponse>;
  
  ListResourcesByState: grpc.handleUnaryCall<_statemanager_ListResourcesByStateRequest__Output, _statemanager_ListResourcesByStateResponse>;
  
  SendAction: grpc.handleUnaryCall<_statemanager_Action__Output, _statemanager_Response>;
  
  SendChangedContainerList: grpc.handleUnaryCall<_monitoringserver_ContainerList__Output, _monitoringserver_SendContainerListResponse>;
  
  SendStateChange: grpc.handleUnaryCall<_statemanager_StateChange__Output, _statemanager_StateChangeResponse>;
  
  SubscribeToStateChanges: grpc.handleServerStreamingCall<_statemanager_StateChangeSubscriptionRequest__Output, _statemanager_StateChangeEvent>;
  
  TriggerOffloading: grpc.handleUnaryCall<_statemanager_OffloadingRequest__Output, _statemanager_OffloadingResponse>;
  
}

export interface StateManagerConnectionDefinition extends grpc.ServiceDefinition {
  GetResourceState: MethodDefinition<_statemanager_ResourceStateRequest, _statemanager_ResourceStateResponse, _statemanager_ResourceStateRequest__Output, _statemanager_ResourceStateResponse__Output>
  GetResourceStateHistory: MethodDefinition<_statemanager_ResourceStateHistoryRequest, _statemanager_ResourceStateHistoryResponse, _statemanager_ResourceStateHistoryRequest__Output, _statemanager_ResourceStateHistoryResponse__Output>
  ListResourcesByState: MethodDefinition<_statemanager_ListResourcesByStateRequest, _statemanager_ListResourcesByStateResponse, _statemanager_ListResourcesByStateRequest__Output, _statemanager_ListResourcesByStateResponse__Output>
  SendAction: MethodDefinition<_statemanager_Action, _statemanager_Response, _statemanager_Action__Output, _statemanager_Response__Output>
  SendChangedContainerList: MethodDefinition<_monitoringserver_ContainerList, _monitoringserver_SendContainerListResponse, _monitoringserver_ContainerList__Output, _monitoringserver_SendContainerListResponse__Output>
  SendStateChange: MethodDefinition<_statemanager_StateChange, _statemanager_StateChangeResponse, _statemanager_StateChange__Output, _statemanager_StateChangeResponse__Output>
  SubscribeToStateChanges: MethodDefinition<_statemanager_StateChangeSubscriptionRequest, _statemanager_StateChangeEvent, _statemanager_StateChangeSubscriptionRequest__Output, _statemanager_StateChangeEvent__Output>
  TriggerOffloading: MethodDefinition<_statemanager_OffloadingRequest, _statemanager_OffloadingResponse, _statemanager_OffloadingRequest__Output, _statemanager_OffloadingResponse__Output>
}

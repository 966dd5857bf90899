import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ContainerInfo as _monitoringserver_ContainerInfo, ContainerInfo__Output as _monitoringserver_ContainerInfo__Output } from './monitoringserver/ContainerInfo.js';
import type { ContainerList as _monitoringserver_ContainerList, ContainerList__Output as _monitoringserver_ContainerList__Output } from './monitoringserver/ContainerList.js';
import type { SendContainerListResponse as _monitoringserver_SendContainerListResponse, SendContainerListResponse__Output as _monitoringserver_SendContainerListResponse__Output } from './monitoringserver/SendContainerListResponse.js';
import type { Action as _statemanager_Action, Action__Output as _statemanager_Action__Output } from './statemanager/Action.js';
import type { HealthCheck as _statemanager_HealthCheck, HealthCheck__Output as _statemanager_HealthCheck__Output } from './statemanager/HealthCheck.js';
import type { HealthStatus as _statemanager_HealthStatus, HealthStatus__Output as _statemanager_HealthStatus__Output } from './statemanager/HealthStatus.js';
import type { ListResourcesByStateRequest as _statemanager_ListResourcesByStateRequest, ListResourcesByStateRequest__Output as _statemanager_ListResourcesByStateRequest__Output } from './statemanager/ListResourcesByStateRequest.js';
import type { ListResourcesByStateResponse as _statemanager_ListResourcesByStateResponse, ListResourcesByStateResponse__Output as _statemanager_ListResourcesByStateResponse__Output } from './statemanager/ListResourcesByStateResponse.js';
import type { OffloadingRequest as _statemanager_OffloadingRequest, OffloadingRequest__Output as _statemanager_OffloadingRequest__Output } from './statemanager/OffloadingRequest.js';
import type { OffloadingResponse as _statemanager_OffloadingResponse, OffloadingResponse__Output as _statemanager_OffloadingResponse__Output } from './statemanager/OffloadingResponse.js';
import type { ResourceState as _statemanager_ResourceState, ResourceState__Output as _statemanager_ResourceState__Output } from './statemanager/ResourceState.js';
import type { ResourceStateHistoryRequest as _statemanager_ResourceStateHistoryRequest, ResourceStateHistoryRequest__Output as _statemanager_ResourceStateHistoryRequest__Output } from './statemanager/ResourceStateHistoryRequest.js';
import type { ResourceStateHistoryResponse as _statemanager_ResourceStateHistoryResponse, ResourceStateHistoryResponse__Output as _statemanager_ResourceStateHistoryResponse__Output } from './statemanager/ResourceStateHistoryResponse.js';
import type { ResourceStateRequest as _statemanager_ResourceStateRequest, ResourceStateRequest__Output as _statemanager_ResourceStateRequest__Output } from './statemanager/ResourceStateRequest.js';
import type { ResourceStateResponse as _statemanager_ResourceStateResponse, ResourceStateResponse__Output as _statemanager_ResourceStateResponse__Output } from './statemanager/ResourceStateResponse.js';
import type { Response as _statemanager_Response, Response__Output as _statemanager_Response__Output } from './statemanager/Response.js';
import type { StateChange as _statemanager_StateChange, StateChange__Output as _statemanager_StateChange__Output } from './statemanager/StateChange.js';
import type { StateChangeEvent as _statemanager_StateChangeEvent, StateChangeEvent__Output as _statemanager_StateChangeEvent__Output } from './statemanager/StateChangeEvent.js';
import type { StateChangeResponse as _statemanager_StateChangeResponse, StateChangeResponse__Output as _statemanager_StateChangeResponse__Output } from './statemanager/StateChangeResponse.js';
import type { StateChangeSubscriptionRequest as _statemanager_StateChangeSubscriptionRequest, StateChangeSubscriptionRequest__Output as _statemanager_StateChangeSubscriptionRequest__Output } from './statemanager/StateChangeSubscriptionRequest.js';
import type { StateManagerConnectionClient as _statemanager_StateManagerConnectionClient, StateManagerConnectionDefinition as _statemanager_StateManagerConnectionDefinition } from './statemanager/StateManagerConnection.js';
import type { StateTransitionHistory as _statemanager_StateTransitionHistory, StateTransitionHistory__Output as _statemanager_StateTransitionHistory__Output } from './statemanager/StateTransitionHistory.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  monitoringserver: {
    ContainerInfo: MessageTypeDefinition<_monitoringserver_ContainerInfo, _monitoringserver_ContainerInfo__Output>
    ContainerList: MessageTypeDefinition<_monitoringserver_ContainerList, _monitoringserver_ContainerList__Output>
    SendContainerListResponse: MessageTypeDefinition<_monitoringserver_SendContainerListResponse, _monitoringserver_SendContainerListResponse__Output>
  }
  statemanager: {
    ASILLevel: EnumTypeDefinition
    Action: MessageTypeDefinition<_statemanager_Action, _statemanager_Action__Output>
    ErrorCode: EnumTypeDefinition
    EventType: EnumTypeDefinition
    HealthCheck: MessageTypeDefinition<_statemanager_HealthCheck, _statemanager_HealthCheck__Output>
    HealthStatus: MessageTypeDefinition<_statemanager_HealthStatus, _statemanager_HealthStatus__Output>
    ListResourcesByStateRequest: MessageTypeDefinition<_statemanager_ListResourcesByStateRequest, _statemanager_ListResourcesByStateRequest__Output>
    ListResourcesByStateResponse: MessageTypeDefinition<_statemanager_ListResourcesByStateResponse, _statemanager_ListResourcesByStateResponse__Output>
    OffloadingRequest: MessageTypeDefinition<_statemanager_OffloadingRequest, _statemanager_OffloadingRequest__Output>
    OffloadingResponse: MessageTypeDefinition<_statemanager_OffloadingResponse, _statemanager_OffloadingResponse__Output>
    ResourceState: MessageTypeDefinition<_statemanager_ResourceState, _statemanager_ResourceState__Output>
    ResourceStateHistoryRequest: MessageTypeDefinition<_statemanager_ResourceStateHistoryRequest, _statemanager_ResourceStateHistoryRequest__Output>
    ResourceStateHistoryResponse: MessageTypeDefinition<_statemanager_ResourceStateHistoryResponse, _statemanager_ResourceStateHistoryResponse__Output>
    ResourceStateRequest: MessageTypeDefinition<_statemanager_ResourceStateRequest, _statemanager_ResourceStateRequest__Output>
    ResourceStateResponse: MessageTypeDefinition<_statemanager_ResourceStateResponse, _statemanager_ResourceStateResponse__Output>
    ResourceType: EnumTypeDefinition
    Response: MessageTypeDefinition<_statemanager_Response, _statemanager_Response__Output>
    ScenarioState: EnumTypeDefinition
    Severity: EnumTypeDefinition
    StateChange: MessageTypeDefinition<_statemanager_StateChange, _statemanager_StateChange__Output>
    StateChangeEvent: MessageTypeDefinition<_statemanager_StateChangeEvent, _statemanager_StateChangeEvent__Output>
    StateChangeResponse: MessageTypeDefinition<_statemanager_StateChangeResponse, _statemanager_StateChangeResponse__Output>
    StateChangeSubscriptionRequest: MessageTypeDefinition<_statemanager_StateChangeSubscriptionRequest, _statemanager_StateChangeSubscriptionRequest__Output>
    StateManagerConnection: SubtypeConstructor<typeof grpc.Client, _statemanager_StateManagerConnectionClient> & { service: _statemanager_StateManagerConnectionDefinition }
    StateTransitionHistory: MessageTypeDefinition<_statemanager_StateTransitionHistory, _statemanager_StateTransitionHistory__Output>
  }
}


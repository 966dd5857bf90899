import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ContainerInfo as _monitoringserver_ContainerInfo, ContainerInfo__Output as _monitoringserver_ContainerInfo__Output } from './monitoringserver/ContainerInfo.js';
import type { ContainerList as _monitoringserver_ContainerList, ContainerList__Output as _monitoringserver_ContainerList__Output } from './monitoringserver/ContainerList.js';
import type { SendContainerListResponse as _monitoringserver_SendContainerListResponse, SendContainerListResponse__Output as _monitoringserver_SendContainerListResponse__Output } from './monitoringserver/SendContainerListResponse.js';
import type { Action as _statemanager_Action, Action__Output as _statemanager_Action__Output } from './statemanager/Action.js';
import type { Response as _statemanager_Response, Response__Output as _statemanager_Response__Output } from './statemanager/Response.js';
import type { StateChange as _statemanager_StateChange, StateChange__Output as _statemanager_StateChange__Output } from './statemanager/StateChange.js';
import type { StateChangeResponse as _statemanager_StateChangeResponse, StateChangeResponse__Output as _statemanager_StateChangeResponse__Output } from './statemanager/StateChangeResponse.js';
import type { StateManagerConnectionClient as _statemanager_StateManagerConnectionClient, StateManagerConnectionDefinition as _statemanager_StateManagerConnectionDefinition } from './statemanager/StateManagerConnection.js';

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
    Action: MessageTypeDefinition<_statemanager_Action, _statemanager_Action__Output>
    ErrorCode: EnumTypeDefinition
    ResourceType: EnumTypeDefinition
    Response: MessageTypeDefinition<_statemanager_Response, _statemanager_Response__Output>
    ScenarioState: EnumTypeDefinition
    StateChange: MessageTypeDefinition<_statemanager_StateChange, _statemanager_StateChange__Output>
    StateChangeResponse: MessageTypeDefinition<_statemanager_StateChangeResponse, _statemanager_StateChangeResponse__Output>
    StateManagerConnection: SubtypeConstructor<typeof grpc.Client, _statemanager_StateManagerConnectionClient> & { service: _statemanager_StateManagerConnectionDefinition }
  }
}


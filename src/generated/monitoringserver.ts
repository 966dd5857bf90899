import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ContainerInfo as _monitoringserver_ContainerInfo, ContainerInfo__Output as _monitoringserver_ContainerInfo__Output } from './monitoringserver/ContainerInfo.js';
import type { ContainerList as _monitoringserver_ContainerList, ContainerList__Output as _monitoringserver_ContainerList__Output } from './monitoringserver/ContainerList.js';
import type { SendContainerListResponse as _monitoringserver_SendContainerListResponse, SendContainerListResponse__Output as _monitoringserver_SendContainerListResponse__Output } from './monitoringserver/SendContainerListResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  monitoringserver: {
    ContainerInfo: MessageTypeDefinition<_monitoringserver_ContainerInfo, _monitoringserver_ContainerInfo__Output>
    ContainerList: MessageTypeDefinition<_monitoringserver_ContainerList, _monitoringserver_ContainerList__Output>
    SendContainerListResponse: MessageTypeDefinition<_monitoringserver_SendContainerListResponse, _monitoringserver_SendContainerListResponse__Output>
  }
}


// Original file: src/proto/monitoringserver.proto

import type { ContainerInfo as _monitoringserver_ContainerInfo, ContainerInfo__Output as _monitoringserver_ContainerInfo__Output } from '../monitoringserver/ContainerInfo.js';

export interface ContainerList {
  'node_name'?: (string);
  'containers'?: (_monitoringserver_ContainerInfo)[];
}

export interface ContainerList__Output {
  'node_name': (string);
  'containers': (_monitoringserver_ContainerInfo__Output)[];
}

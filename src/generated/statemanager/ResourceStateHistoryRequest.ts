// Original file: src/proto/statemanager.proto

import type { ResourceType as _statemanager_ResourceType, ResourceType__Output as _statemanager_ResourceType__Output } from '../statemanager/ResourceType.js';
import type { Long } from '@grpc/proto-loader';

export interface ResourceStateHistoryRequest {
  'resource_type'?: (_statemanager_ResourceType);
  'resource_name'?: (string);
  'start_time_ns'?: (number | string | Long);
  'end_time_ns'?: (number | string | Long);
  'limit'?: (number);
}

export interface ResourceStateHistoryRequest__Output {
  'resource_type': (_statemanager_ResourceType__Output);
  'resource_name': (string);
  'start_time_ns': (string);
  'end_time_ns': (string);
  'limit': (number);
}

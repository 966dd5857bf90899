// Original file: src/proto/statemanager.proto

import type { ResourceType as _statemanager_ResourceType, ResourceType__Output as _statemanager_ResourceType__Output } from '../statemanager/ResourceType.js';

export interface ResourceStateRequest {
  'resource_type'?: (_statemanager_ResourceType);
  'resource_name'?: (string);
}

export interface ResourceStateRequest__Output {
  'resource_type': (_statemanager_ResourceType__Output);
  'resource_name': (string);
}

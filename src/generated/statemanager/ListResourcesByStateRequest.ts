// Original file: src/proto/statemanager.proto

import type { ResourceType as _statemanager_ResourceType, ResourceType__Output as _statemanager_ResourceType__Output } from '../statemanager/ResourceType.js';

export interface ListResourcesByStateRequest {
  'resource_type'?: (_statemanager_ResourceType);
  'state'?: (string);
  'label_selector'?: ({[key: string]: string});
  'limit'?: (number);
}

export interface ListResourcesByStateRequest__Output {
  'resource_type': (_statemanager_ResourceType__Output);
  'state': (string);
  'label_selector': ({[key: string]: string});
  'limit': (number);
}

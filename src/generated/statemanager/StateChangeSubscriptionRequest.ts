// Original file: src/proto/statemanager.proto

import type { ResourceType as _statemanager_ResourceType, ResourceType__Output as _statemanager_ResourceType__Output } from '../statemanager/ResourceType.js';

export interface StateChangeSubscriptionRequest {
  'resource_type'?: (_statemanager_ResourceType);
  'filter'?: ({[key: string]: string});
  'include_health_events'?: (boolean);
  'include_recovery_events'?: (boolean);
}

export interface StateChangeSubscriptionRequest__Output {
  'resource_type': (_statemanager_ResourceType__Output);
  'filter': ({[key: string]: string});
  'include_health_events': (boolean);
  'include_recovery_events': (boolean);
}

// Original file: src/proto/statemanager.proto

import type { ResourceType as _statemanager_ResourceType, ResourceType__Output as _statemanager_ResourceType__Output } from '../statemanager/ResourceType.js';
import type { Long } from '@grpc/proto-loader';

export interface StateChange {
  'resource_type'?: (_statemanager_ResourceType);
  'resource_name'?: (string);
  'current_state'?: (string);
  'target_state'?: (string);
  'transition_id'?: (string);
  'timestamp_ns'?: (number | string | Long);
  'source'?: (string);
}

export interface StateChange__Output {
  'resource_type': (_statemanager_ResourceType__Output);
  'resource_name': (string);
  'current_state': (string);
  'target_state': (string);
  'transition_id': (string);
  'timestamp_ns': (string);
  'source': (string);
}

// Original file: src/proto/statemanager.proto

import type { ResourceState as _statemanager_ResourceState, ResourceState__Output as _statemanager_ResourceState__Output } from '../statemanager/ResourceState.js';

export interface ResourceStateResponse {
  'resource_state'?: (_statemanager_ResourceState | null);
  'success'?: (boolean);
  'message'?: (string);
}

export interface ResourceStateResponse__Output {
  'resource_state': (_statemanager_ResourceState__Output | null);
  'success': (boolean);
  'message': (string);
}

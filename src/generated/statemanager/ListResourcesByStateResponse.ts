// Original file: src/proto/statemanager.proto

import type { ResourceState as _statemanager_ResourceState, ResourceState__Output as _statemanager_ResourceState__Output } from '../statemanager/ResourceState.js';

export interface ListResourcesByStateResponse {
  'resources'?: (_statemanager_ResourceState)[];
  'success'?: (boolean);
  'message'?: (string);
  'total_count'?: (number);
}

export interface ListResourcesByStateResponse__Output {
  'resources': (_statemanager_ResourceState__Output)[];
  'success': (boolean);
  'message': (string);
  'total_count': (number);
}

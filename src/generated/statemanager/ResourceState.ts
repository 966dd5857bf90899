// Original file: src/proto/statemanager.proto

import type { ResourceType as _statemanager_ResourceType, ResourceType__Output as _statemanager_ResourceType__Output } from '../statemanager/ResourceType.js';
import type { ASILLevel as _statemanager_ASILLevel, ASILLevel__Output as _statemanager_ASILLevel__Output } from '../statemanager/ASILLevel.js';
import type { StateTransitionHistory as _statemanager_StateTransitionHistory, StateTransitionHistory__Output as _statemanager_StateTransitionHistory__Output } from '../statemanager/StateTransitionHistory.js';
import type { HealthStatus as _statemanager_HealthStatus, HealthStatus__Output as _statemanager_HealthStatus__Output } from '../statemanager/HealthStatus.js';
import type { Long } from '@grpc/proto-loader';

export interface ResourceState {
  'resource_type'?: (_statemanager_ResourceType);
  'resource_name'?: (string);
  'current_state'?: (string);
  'desired_state'?: (string);
  'last_transition_time_ns'?: (number | string | Long);
  'state_generation'?: (number | string | Long);
  'asil_level'?: (_statemanager_ASILLevel);
  'metadata'?: ({[key: string]: string});
  'history'?: (_statemanager_StateTransitionHistory)[];
  'health_status'?: (_statemanager_HealthStatus | null);
}

export interface ResourceState__Output {
  'resource_type': (_statemanager_ResourceType__Output);
  'resource_name': (string);
  'current_state': (string);
  'desired_state': (string);
  'last_transition_time_ns': (string);
  'state_generation': (string);
  'asil_level': (_statemanager_ASILLevel__Output);
  'metadata': ({[key: string]: string});
  'history': (_statemanager_StateTransitionHistory__Output)[];
  'health_status': (_statemanager_HealthStatus__Output | null);
}

// Original file: src/proto/statemanager.proto

import type { StateTransitionHistory as _statemanager_StateTransitionHistory, StateTransitionHistory__Output as _statemanager_StateTransitionHistory__Output } from '../statemanager/StateTransitionHistory.js';

export interface ResourceStateHistoryResponse {
  'history'?: (_statemanager_StateTransitionHistory)[];
  'success'?: (boolean);
  'message'?: (string);
}

export interface ResourceStateHistoryResponse__Output {
  'history': (_statemanager_StateTransitionHistory__Output)[];
  'success': (boolean);
  'message': (string);
}

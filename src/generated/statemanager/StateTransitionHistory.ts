// Original file: src/proto/statemanager.proto

import type { Long } from '@grpc/proto-loader';

export interface StateTransitionHistory {
  'from_state'?: (string);
  'to_state'?: (string);
  'timestamp_ns'?: (number | string | Long);
  'transition_id'?: (string);
  'reason'?: (string);
  'source'?: (string);
  'duration_ms'?: (number | string | Long);
  'success'?: (boolean);
}

export interface StateTransitionHistory__Output {
  'from_state': (string);
  'to_state': (string);
  'timestamp_ns': (string);
  'transition_id': (string);
  'reason': (string);
  'source': (string);
  'duration_ms': (string);
  'success': (boolean);
}

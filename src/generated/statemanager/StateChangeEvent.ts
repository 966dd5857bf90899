// Original file: src/proto/statemanager.proto

import type { EventType as _statemanager_EventType, EventType__Output as _statemanager_EventType__Output } from '../statemanager/EventType.js';
import type { StateChange as _statemanager_StateChange, StateChange__Output as _statemanager_StateChange__Output } from '../statemanager/StateChange.js';
import type { Severity as _statemanager_Severity, Severity__Output as _statemanager_Severity__Output } from '../statemanager/Severity.js';
import type { Long } from '@grpc/proto-loader';

export interface StateChangeEvent {
  'event_type'?: (_statemanager_EventType);
  'state_change'?: (_statemanager_StateChange | null);
  'event_timestamp_ns'?: (number | string | Long);
  'event_id'?: (string);
  'severity'?: (_statemanager_Severity);
  'description'?: (string);
  'metadata'?: ({[key: string]: string});
}

export interface StateChangeEvent__Output {
  'event_type': (_statemanager_EventType__Output);
  'state_change': (_statemanager_StateChange__Output | null);
  'event_timestamp_ns': (string);
  'event_id': (string);
  'severity': (_statemanager_Severity__Output);
  'description': (string);
  'metadata': ({[key: string]: string});
}

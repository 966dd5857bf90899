// Original file: src/proto/actioncontroller.proto

import type { PodStatus as _actioncontroller_PodStatus, PodStatus__Output as _actioncontroller_PodStatus__Output } from '../actioncontroller/PodStatus.js';

export interface ReconcileRequest {
  'scenario_name'?: (string);
  'current'?: (_actioncontroller_PodStatus);
  'desired'?: (_actioncontroller_PodStatus);
}

export interface ReconcileRequest__Output {
  'scenario_name': (string);
  'current': (_actioncontroller_PodStatus__Output);
  'desired': (_actioncontroller_PodStatus__Output);
}

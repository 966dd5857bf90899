// Original file: src/proto/statemanager.proto

import type { HealthCheck as _statemanager_HealthCheck, HealthCheck__Output as _statemanager_HealthCheck__Output } from '../statemanager/HealthCheck.js';
import type { Long } from '@grpc/proto-loader';

export interface HealthStatus {
  'healthy'?: (boolean);
  'status_message'?: (string);
  'last_health_check_ns'?: (number | string | Long);
  'checks'?: (_statemanager_HealthCheck)[];
}

export interface HealthStatus__Output {
  'healthy': (boolean);
  'status_message': (string);
  'last_health_check_ns': (string);
  'checks': (_statemanager_HealthCheck__Output)[];
}

// Original file: src/proto/statemanager.proto

import type { Long } from '@grpc/proto-loader';

export interface HealthCheck {
  'check_name'?: (string);
  'passed'?: (boolean);
  'message'?: (string);
  'timestamp_ns'?: (number | string | Long);
}

export interface HealthCheck__Output {
  'check_name': (string);
  'passed': (boolean);
  'message': (string);
  'timestamp_ns': (string);
}

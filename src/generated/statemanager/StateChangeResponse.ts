// Original file: src/proto/statemanager.proto

import type { ErrorCode as _statemanager_ErrorCode, ErrorCode__Output as _statemanager_ErrorCode__Output } from '../statemanager/ErrorCode.js';
import type { Long } from '@grpc/proto-loader';

export interface StateChangeResponse {
  'message'?: (string);
  'transition_id'?: (string);
  'timestamp_ns'?: (number | string | Long);
  'error_code'?: (_statemanager_ErrorCode);
  'error_details'?: (string);
}

export interface StateChangeResponse__Output {
  'message': (string);
  'transition_id': (string);
  'timestamp_ns': (string);
  'error_code': (_statemanager_ErrorCode__Output);
  'error_details': (string);
}

// Original file: src/proto/actioncontroller.proto


export interface OffloadModelResponse {
  'success'?: (boolean);
  'message'?: (string);
  'transition_id'?: (string);
}

export interface OffloadModelResponse__Output {
  'success': (boolean);
  'message': (string);
  'transition_id': (string);
}

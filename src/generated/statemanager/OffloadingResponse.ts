// Original file: src/proto/statemanager.proto


export interface OffloadingResponse {
  'accepted'?: (boolean);
  'message'?: (string);
  'transition_id'?: (string);
}

export interface OffloadingResponse__Output {
  'accepted': (boolean);
  'message': (string);
  'transition_id': (string);
}

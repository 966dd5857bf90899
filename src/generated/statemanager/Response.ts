// Original file: src/proto/statemanager.proto


export interface Response {
  'resp'?: (string);
}

export interface Response__Output {
  'resp': (string);
}

// Original file: src/proto/statemanager.proto


export interface Action {
  'action'?: (string);
}

export interface Action__Output {
  'action': (string);
}

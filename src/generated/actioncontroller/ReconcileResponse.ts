// Original file: src/proto/actioncontroller.proto


export interface ReconcileResponse {
  'status'?: (number);
  'desc'?: (string);
}

export interface ReconcileResponse__Output {
  'status': (number);
  'desc': (string);
}

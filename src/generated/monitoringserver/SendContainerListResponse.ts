// Original file: src/proto/monitoringserver.proto


export interface SendContainerListResponse {
  'resp'?: (string);
}

export interface SendContainerListResponse__Output {
  'resp': (string);
}

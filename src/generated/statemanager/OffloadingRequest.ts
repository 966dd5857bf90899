// Original file: src/proto/statemanager.proto


export interface OffloadingRequest {
  'scenario_name'?: (string);
  'package_name'?: (string);
  'model_name'?: (string);
  'source_node'?: (string);
  'target_node'?: (string);
  'policy_name'?: (string);
  'reason'?: (string);
}

export interface OffloadingRequest__Output {
  'scenario_name': (string);
  'package_name': (string);
  'model_name': (string);
  'source_node': (string);
  'target_node': (string);
  'policy_name': (string);
  'reason': (string);
}

// Original file: src/proto/actioncontroller.proto


export interface OffloadModelRequest {
  'scenario_name'?: (string);
  'package_name'?: (string);
  'model_name'?: (string);
  'source_node'?: (string);
  'target_node'?: (string);
  'policy_name'?: (string);
  'reason'?: (string);
}

export interface OffloadModelRequest__Output {
  'scenario_name': (string);
  'package_name': (string);
  'model_name': (string);
  'source_node': (string);
  'target_node': (string);
  'policy_name': (string);
  'reason': (string);
}

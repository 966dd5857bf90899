// Original file: src/proto/monitoringserver.proto


export interface ContainerInfo {
  'id'?: (string);
  'names'?: (string)[];
  'image'?: (string);
  'state'?: ({[key: string]: string});
  'config'?: ({[key: string]: string});
  'annotation'?: ({[key: string]: string});
  'stats'?: ({[key: string]: string});
}

export interface ContainerInfo__Output {
  'id': (string);
  'names': (string)[];
  'image': (string);
  'state': ({[key: string]: string});
  'config': ({[key: string]: string});
  'annotation': ({[key: string]: string});
  'stats': ({[key: string]: string});
}

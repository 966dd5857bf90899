// Original file: src/proto/statemanager.proto

export const ASILLevel = {
  ASIL_LEVEL_UNSPECIFIED: 'ASIL_LEVEL_UNSPECIFIED',
  ASIL_LEVEL_QM: 'ASIL_LEVEL_QM',
  ASIL_LEVEL_A: 'ASIL_LEVEL_A',
  ASIL_LEVEL_B: 'ASIL_LEVEL_B',
  ASIL_LEVEL_C: 'ASIL_LEVEL_C',
  ASIL_LEVEL_D: 'ASIL_LEVEL_D',
} as const;

export type ASILLevel =
  | 'ASIL_LEVEL_UNSPECIFIED'
  | 0
  | 'ASIL_LEVEL_QM'
  | 1
  | 'ASIL_LEVEL_A'
  | 2
  | 'ASIL_LEVEL_B'
  | 3
  | 'ASIL_LEVEL_C'
  | 4
  | 'ASIL_LEVEL_D'
  | 5

export type ASILLevel__Output = typeof ASILLevel[keyof typeof ASILLevel]

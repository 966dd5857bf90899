// Original file: src/proto/actioncontroller.proto

export const PodStatus = {
  NONE: 'NONE',
  INIT: 'INIT',
  READY: 'READY',
  RUNNING: 'RUNNING',
  DONE: 'DONE',
  FAILED: 'FAILED',
  UNKNOWN: 'UNKNOWN',
} as const;

export type PodStatus =
  | 'NONE'
  | 0
  | 'INIT'
  | 1
  | 'READY'
  | 2
  | 'RUNNING'
  | 3
  | 'DONE'
  | 4
  | 'FAILED'
  | 5
  | 'UNKNOWN'
  | 6

export type PodStatus__Output = typeof PodStatus[keyof typeof PodStatus]

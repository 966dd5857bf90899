// Original file: src/proto/statemanager.proto

export const Severity = {
  SEVERITY_UNSPECIFIED: 'SEVERITY_UNSPECIFIED',
  SEVERITY_INFO: 'SEVERITY_INFO',
  SEVERITY_WARNING: 'SEVERITY_WARNING',
  SEVERITY_ERROR: 'SEVERITY_ERROR',
  SEVERITY_CRITICAL: 'SEVERITY_CRITICAL',
} as const;

export type Severity =
  | 'SEVERITY_UNSPECIFIED'
  | 0
  | 'SEVERITY_INFO'
  | 1
  | 'SEVERITY_WARNING'
  | 2
  | 'SEVERITY_ERROR'
  | 3
  | 'SEVERITY_CRITICAL'
  | 4

export type Severity__Output = typeof Severity[keyof typeof Severity]

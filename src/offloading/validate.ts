// An OffloadingRequest's fields, checked before anything is looked up: each refusal names the
// field. Names follow the rules of every other name statemanager takes (src/grpc/validation.ts):
// required, bounded, no '/', control, bidirectional or invisible characters, no surrounding
// spaces. `policy_name` and `reason` are stored with the record and logged, so they are bounded
// and free of control characters too.
import type { OffloadingRequest__Output } from '../generated/statemanager/OffloadingRequest.js';
import { LIMITS, nameRules, textProblem, type Validation } from '../grpc/validation.js';

export interface OffloadRequest {
  /** Empty when the caller named none (Pullpiri passes it on as is). */
  scenario: string;
  package: string;
  model: string;
  source: string;
  target: string;
  policy: string;
  reason: string;
}

export const OFFLOADING_LIMITS = {
  /** Bytes of `policy_name`: a resource name. */
  policyNameBytes: LIMITS.resourceNameBytes,
} as const;

export function validateOffloading(req: OffloadingRequest__Output, reasonBytes: number): Validation<OffloadRequest> {
  const fail = (message: string): Validation<OffloadRequest> => ({ ok: false, message });
  const names: [keyof OffloadingRequest__Output, number][] = [
    ['model_name', LIMITS.resourceNameBytes],
    ['package_name', LIMITS.resourceNameBytes],
    ['source_node', LIMITS.nodeNameBytes],
    ['target_node', LIMITS.nodeNameBytes],
  ];
  for (const [field, maxBytes] of names) {
    const problem = nameProblem(String(req[field]), nameRules(maxBytes));
    if (problem) return fail(`${field} ${problem}`);
  }
  if (req.scenario_name.length > 0) {
    const problem = nameProblem(req.scenario_name, nameRules(LIMITS.resourceNameBytes));
    if (problem) return fail(`scenario_name ${problem}`);
  }
  const policy = textProblem(req.policy_name, { maxBytes: OFFLOADING_LIMITS.policyNameBytes, noControl: true, noInvisible: true });
  if (policy) return fail(`policy_name ${policy}`);
  const reason = textProblem(req.reason, { maxBytes: reasonBytes, noControl: true });
  if (reason) return fail(`reason ${reason}`);
  if (req.source_node === req.target_node) return fail(`source_node and target_node are both ${JSON.stringify(req.source_node)}: nothing to move`);
  return {
    ok: true,
    value: {
      scenario: req.scenario_name,
      package: req.package_name,
      model: req.model_name,
      source: req.source_node,
      target: req.target_node,
      policy: req.policy_name,
      reason: req.reason,
    },
  };
}

function nameProblem(s: string, rules: ReturnType<typeof nameRules>): string | undefined {
  const problem = textProblem(s, rules);
  if (problem) return problem;
  return s.trim() !== s ? 'has leading or trailing spaces' : undefined;
}

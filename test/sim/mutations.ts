// The known bug shapes the simulation must find (issue 19 item 3), each planted through a
// test-only option that only the simulation's wiring sets.
export const MUTATIONS = ['unguarded-state-write', 'request-after-error', 'unfenced-leader', 'informer-resume-listed', 'queue-drops-dirty'] as const;
export type Mutation = (typeof MUTATIONS)[number];

export function parseMutation(s: string | undefined): Mutation | undefined {
  if (s === undefined || s === '' || s === 'none') return undefined;
  if ((MUTATIONS as readonly string[]).includes(s)) return s as Mutation;
  throw new Error(`unknown mutation ${s}; one of ${MUTATIONS.join(', ')}`);
}

// Counting values: the map, and the short, stable reason for a transition built from it (the
// children's states by count, "2 running, 1 dead").

export function countValues(values: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

export function summarizeCounts(values: readonly string[]): string {
  if (values.length === 0) return 'none';
  return [...countValues(values)]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}

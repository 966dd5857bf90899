// A short, stable reason for a transition: the children's states by count ("2 running, 1 dead").
export function countBy(values: readonly string[]): string {
  if (values.length === 0) return 'none';
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}

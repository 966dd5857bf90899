// Pure formatting for the command-line tool: tables, relative times, durations, colours, counts
// and trees. No I/O here, so every function can be tested on its own.

/** How a command prints its result. */
export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/** Shown in a table cell that has no value (kubectl's convention). */
export const NONE = '<none>';

// --- colour ---------------------------------------------------------------------------------

export type Colour = 'green' | 'yellow' | 'red' | 'grey';

const ANSI: Record<Colour, string> = { green: '32', yellow: '33', red: '31', grey: '90' };

/** Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function shouldColour(isTTY: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  return isTTY === true && env.NO_COLOR === undefined;
}

// States of models, packages and scenarios, and container statuses, lower-cased.
const STATE_COLOURS: ReadonlyMap<string, Colour> = new Map<string, Colour>([
  ['running', 'green'],
  ['idle', 'green'],
  ['satisfied', 'green'],
  ['allowed', 'green'],
  ['completed', 'green'],
  ['paused', 'yellow'],
  ['degraded', 'yellow'],
  ['waiting', 'yellow'],
  ['error', 'red'],
  ['dead', 'red'],
  ['denied', 'red'],
  ['unknown', 'red'],
  ['exited', 'grey'],
  ['created', 'grey'],
]);

/** The colour of a state or container status (any case), or undefined for anything else. */
export function stateColour(state: string): Colour | undefined {
  return STATE_COLOURS.get(state.trim().toLowerCase());
}

export function paint(text: string, colour: Colour | undefined, enabled: boolean): string {
  if (!enabled || colour === undefined || text === '') return text;
  return `\u001b[${ANSI[colour]}m${text}\u001b[0m`;
}

/** A state name in its colour (when colour is enabled). */
export function paintState(state: string, enabled: boolean): string {
  return paint(state, stateColour(state), enabled);
}

// eslint-disable-next-line no-control-regex
const ANSI_RE = /\u001b\[[0-9;]*m/g;

// Anything a terminal would act on rather than show: C0 (an ESC not starting one of our colour
// codes), DEL, C1, and bidirectional overrides and isolates.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE_RE = /\u001b(?!\[[0-9;]*m)|[\u0000-\u001a\u001c-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from etcd made safe to print: every unprintable character shown as \u{XX}, so a value
 * cannot clear the screen, move the cursor or reorder what a name looks like. Our own colour
 * codes pass.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE_RE, (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`);
}

/** The text without colour codes (what a table measures). */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_RE, '');
}

// --- tables ---------------------------------------------------------------------------------

/**
 * A kubectl-style table: upper-case headers, columns three spaces apart, no trailing spaces.
 * Cells may hold colour codes; widths are measured on the visible text.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return alignRows([headers.map((h) => h.toUpperCase()), ...rows]).join('\n') + '\n';
}

/** Rows with their columns aligned three spaces apart, as lines without trailing spaces. */
export function alignRows(rows: readonly (readonly string[])[]): string[] {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, col) => Math.max(...rows.map((r) => stripAnsi(printable(r[col] ?? '')).length)));
  return rows.map((r) =>
    widths
      .map((w, col) => {
        const cell = printable(r[col] ?? '');
        return col === columns - 1 ? cell : cell + ' '.repeat(w - stripAnsi(cell).length);
      })
      .join('   ')
      .trimEnd(),
  );
}

// --- times and durations ----------------------------------------------------------------------

/** "just now", "45s ago", "2m ago", "3h ago", "4d ago"; "in 5s" for a time ahead of the clock. */
export function relativeTime(iso: string | undefined | null, now: number): string {
  if (iso === undefined || iso === null) return NONE;
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const diff = now - at;
  const span = shortDuration(Math.abs(diff));
  if (Math.abs(diff) < 1000) return 'just now';
  return diff >= 0 ? `${span} ago` : `in ${span}`;
}

/** A span in its largest whole unit: "45s", "2m", "3h", "4d" (below one second: "0s"). */
export function shortDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** A human-written span for a readable message: 250 → "250ms", 3000 → "3s", 90000 → "1.5m". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(1)}m`;
  return `${+(ms / 3_600_000).toFixed(1)}h`;
}

export { parseDuration } from '../config/duration.js';

// --- counts ---------------------------------------------------------------------------------

/**
 * "2 Running, 1 Dead": how many of each value, in the order given (values not in the order
 * come after it, alphabetically). An empty list is "0".
 */
export function formatCounts(counts: ReadonlyMap<string, number>, order: readonly string[], colour = false): string {
  const rank = (k: string): number => {
    const i = order.indexOf(k);
    return i < 0 ? order.length : i;
  };
  const keys = [...counts.keys()].filter((k) => (counts.get(k) ?? 0) > 0);
  keys.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (keys.length === 0) return '0';
  return keys.map((k) => `${counts.get(k)} ${paintState(k, colour)}`).join(', ');
}

// How many times each value occurs: the domain's counting, under the name the CLI uses.
export { countValues as countBy } from '../../domain/rules.js';

/** A count map as a plain object for JSON/YAML output, in the same order as formatCounts. */
export function countsObject(counts: ReadonlyMap<string, number>, order: readonly string[]): Record<string, number> {
  const rank = (k: string): number => {
    const i = order.indexOf(k);
    return i < 0 ? order.length : i;
  };
  const keys = [...counts.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return Object.fromEntries(keys.map((k) => [k, counts.get(k) ?? 0]));
}

// --- trees ----------------------------------------------------------------------------------

export interface TreeNode {
  label: string;
  /** Detail lines printed under the label, before the children. */
  lines?: string[];
  children?: TreeNode[];
}

/**
 * A tree drawn with box characters:
 *
 *     package/shop  Running
 *     │  history: ...
 *     ├─ model/web  Running
 *     │  └─ n1/c1  running
 *     └─ model/db  Exited
 */
export function renderTree(root: TreeNode): string {
  const out: string[] = [];
  const walk = (node: TreeNode, lead: string, cont: string): void => {
    out.push(lead + node.label);
    const kids = node.children ?? [];
    const bar = kids.length > 0 ? '│  ' : '   ';
    for (const line of node.lines ?? []) out.push((cont + bar + line).trimEnd());
    kids.forEach((kid, i) => {
      const last = i === kids.length - 1;
      walk(kid, cont + (last ? '└─ ' : '├─ '), cont + (last ? '   ' : '│  '));
    });
  };
  walk(root, '', '');
  return out.join('\n') + '\n';
}

/** `from → to`, coloured; a resource that had no state yet comes from "(none)". */
export function formatTransition(from: string | null | undefined, to: string, colour: boolean): string {
  const f = from === null || from === undefined || from === '' ? '(none)' : paintState(from, colour);
  return `${f} → ${paintState(to, colour)}`;
}

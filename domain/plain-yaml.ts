// A fast path for the plain block YAML that API servers write (definitions such as
// `spec:\n  models:\n    - name: a\n      node: n1`): nested block mappings and sequences of
// mappings whose scalars are all plain identifiers. It reads about 10× faster than the full
// parser, which took a tenth of a fleet-scale cold start. Anything outside that subset —
// quotes, flow style, comments, anchors, tags, multi-line scalars, duplicate keys, scalars the
// YAML core schema reads as null, booleans or numbers, odd indentation — returns undefined, and
// the caller uses the full parser: the fast path never gives a different answer, only a faster one.

export type PlainValue = string | null | PlainValue[] | { [key: string]: PlainValue };

const KEY = '[A-Za-z_][A-Za-z0-9_.-]*';
// A plain scalar that the core schema reads as a string: starts with a letter or `_`, no
// characters YAML gives meaning to (`:`, `#`, quotes, brackets, commas, spaces).
const SCALAR = '[A-Za-z_][A-Za-z0-9_./-]*';
const LINE = new RegExp(`^( *)(- )?(${KEY}):(?: (${SCALAR}))?$`);
const NOT_STRINGS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

interface Line {
  indent: number;
  /** A `- ` item: its mapping's first key is on this line, its indent is the key's column. */
  item: boolean;
  key: string;
  /** undefined: the value is the block below (or null when there is none). */
  value: string | undefined;
}

export function parsePlainYaml(text: string): PlainValue | undefined {
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    const m = LINE.exec(raw);
    if (!m) return undefined;
    const value = m[4];
    if (value !== undefined && NOT_STRINGS.has(value)) return undefined;
    if (NOT_STRINGS.has(m[3]!) || m[3] === '__proto__') return undefined;
    const item = m[2] !== undefined;
    lines.push({ indent: m[1]!.length + (item ? 2 : 0), item, key: m[3]!, value });
  }
  if (lines.length === 0 || lines[0]!.indent !== 0 || lines[0]!.item) return undefined;
  const at = { i: 0 };
  const root = mapping(lines, at, 0);
  return root !== undefined && at.i === lines.length ? root : undefined;
}

/** The mapping whose keys sit at column `indent`, starting at lines[at.i]. */
function mapping(lines: Line[], at: { i: number }, indent: number): { [key: string]: PlainValue } | undefined {
  const out: { [key: string]: PlainValue } = Object.create(null) as { [key: string]: PlainValue };
  let first = true;
  while (at.i < lines.length) {
    const l = lines[at.i]!;
    if (l.indent < indent) break;
    if (l.indent > indent) return undefined;
    // Only the first key of an item mapping carries the `- `.
    if (l.item && !first) break;
    if (Object.hasOwn(out, l.key)) return undefined; // duplicate key: the full parser says malformed
    first = false;
    at.i++;
    if (l.value !== undefined) {
      out[l.key] = l.value;
      continue;
    }
    const next = lines[at.i];
    // `key:` with nothing more indented below is null. (A `- ` item right below at the key's own
    // column has its key two columns in: it counts as more indented, as in YAML.)
    if (next === undefined || next.indent <= indent) {
      out[l.key] = null;
      continue;
    }
    // A sequence below a key may start at the key's own column, not before it: a `- ` one
    // column to the left of the key is something else to YAML, so the full parser decides.
    if (next.item && next.indent - 2 < indent) return undefined;
    const child = next.item ? sequence(lines, at, next.indent) : mapping(lines, at, next.indent);
    if (child === undefined) return undefined;
    out[l.key] = child;
  }
  return { ...out };
}

/** A sequence of mappings whose item keys sit at column `indent` (`- ` two columns before). */
function sequence(lines: Line[], at: { i: number }, indent: number): PlainValue[] | undefined {
  const out: PlainValue[] = [];
  while (at.i < lines.length) {
    const l = lines[at.i]!;
    if (l.indent !== indent || !l.item) break;
    const item = mapping(lines, at, indent);
    if (item === undefined) return undefined;
    out.push(item);
  }
  const after = lines[at.i];
  if (after !== undefined && after.indent >= indent) return undefined;
  return out;
}

/** A plain object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

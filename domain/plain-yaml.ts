// A fast path for the plain block YAML that API servers write (definitions such as
// `spec:\n  models:\n    - name: a\n      node: n1`): nested block mappings and sequences of
// mappings whose scalars are all plain identifiers. It reads about 10× faster than the full
// parser, which took a tenth of a fleet-scale cold start. Anything outside that subset —
// quotes, flow style, anchors, tags, multi-line scalars, duplicate keys, scalars the
// YAML core schema reads as null, booleans or numbers, odd indentation — returns undefined, and
// the caller uses the full parser: the fast path never gives a different answer, only a faster one.

export type PlainValue = string | null | PlainValue[] | { [key: string]: PlainValue };

// Each line is `^( *)(- )?(KEY):(?: +(SCALAR))?(?: +(#.*)?)?$` or a comment line (spaces, `#`),
// read with charCodeAt (a regular expression and `split` made a match array, its captures and a
// string per line: a third of the parse):
// KEY is `[A-Za-z_][A-Za-z0-9_.-]*`; SCALAR, a plain scalar that the core schema reads as a
// string, is `[A-Za-z_][A-Za-z0-9_./-]*` (no characters YAML gives meaning to: `:`, `#`, quotes,
// brackets, commas, spaces).
const NOT_STRINGS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

interface Line {
  indent: number;
  /** A `- ` item: its mapping's first key is on this line, its indent is the key's column. */
  item: boolean;
  key: string;
  /** undefined: the value is the block below (or null when there is none). */
  value: string | undefined;
}

const SPACE = 0x20;
const DASH = 0x2d;
const COLON = 0x3a;
const HASH = 0x23;

/** `[A-Za-z_]`: how a key and a scalar start. */
function isStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

/** `[A-Za-z0-9_.-]`, and `/` too in a scalar. */
function isRest(c: number, slash: boolean): boolean {
  return isStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === DASH || (slash && c === 0x2f);
}

/** Whether text[i, end) is nothing, spaces, or spaces and a comment (`#` after a space, as YAML has it). */
function restIsComment(text: string, i: number, end: number): boolean {
  if (i === end) return true;
  if (text.charCodeAt(i) !== SPACE) return false;
  while (i < end && text.charCodeAt(i) === SPACE) i++;
  return i === end || text.charCodeAt(i) === HASH;
}

/** Whether text[start, end) holds nothing but spaces (U+0020). */
function isSpaces(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) !== SPACE) return false;
  return true;
}

/** Whether text[start, end) is a comment line: spaces, then `#`. */
function isCommentLine(text: string, start: number, end: number): boolean {
  let i = start;
  while (i < end && text.charCodeAt(i) === SPACE) i++;
  return i < end && text.charCodeAt(i) === HASH;
}

/** The line text[start, end) in the subset, or undefined. */
function readLine(text: string, start: number, end: number): Line | undefined {
  let i = start;
  while (i < end && text.charCodeAt(i) === SPACE) i++;
  const spaces = i - start;
  const item = i + 1 < end && text.charCodeAt(i) === DASH && text.charCodeAt(i + 1) === SPACE;
  if (item) i += 2;
  const keyStart = i;
  if (i >= end || !isStart(text.charCodeAt(i))) return undefined;
  i++;
  while (i < end && isRest(text.charCodeAt(i), false)) i++;
  if (i >= end || text.charCodeAt(i) !== COLON) return undefined;
  const key = text.slice(keyStart, i);
  i++;
  let value: string | undefined;
  if (i < end) {
    if (text.charCodeAt(i) !== SPACE) return undefined;
    while (i < end && text.charCodeAt(i) === SPACE) i++;
    if (i < end && text.charCodeAt(i) !== HASH) {
      if (!isStart(text.charCodeAt(i))) return undefined;
      const valueStart = i;
      i++;
      while (i < end && isRest(text.charCodeAt(i), true)) i++;
      value = text.slice(valueStart, i);
      if (!restIsComment(text, i, end)) return undefined;
    }
  }
  return { indent: spaces + (item ? 2 : 0), item, key, value };
}

export function parsePlainYaml(text: string): PlainValue | undefined {
  const lines: Line[] = [];
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const l = readLine(text, start, end);
    if (l === undefined) {
      // A line of spaces or a comment line is skipped; anything else outside the subset is the
      // full parser's (a line of tabs, a no-break space or a lone CR is content to YAML, where
      // trim() took it for blank: black-box probing found definitions read differently so).
      if (!isCommentLine(text, start, end) && !isSpaces(text, start, end)) return undefined;
    } else {
      if (l.value !== undefined && NOT_STRINGS.has(l.value)) return undefined;
      if (NOT_STRINGS.has(l.key) || l.key === '__proto__') return undefined;
      lines.push(l);
    }
    start = end + 1;
  }
  if (lines.length === 0 || lines[0]!.indent !== 0 || lines[0]!.item) return undefined;
  const at = { i: 0 };
  const root = mapping(lines, at, 0);
  return root !== undefined && at.i === lines.length ? root : undefined;
}

/** The mapping whose keys sit at column `indent`, starting at lines[at.i]. */
function mapping(lines: Line[], at: { i: number }, indent: number): { [key: string]: PlainValue } | undefined {
  // A plain object: `__proto__`, the one key that would not be an own property, was declined above.
  const out: { [key: string]: PlainValue } = {};
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
  return out;
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

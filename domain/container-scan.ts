// The few fields of a container's JSON the rules read, found without building the document.
// A storm of container changes parsed each ~400-byte value into four objects, an array and some
// sixteen strings only to read five of them: JSON.parse was the largest single function in the
// storm's profile (docs/performance.md). This scanner checks the whole text as JSON while reading
// those fields; anything it is not sure of (an escape in a field or key it reads, a deep nesting,
// a document that is not an object, invalid JSON) returns undefined, and the caller parses with
// JSON.parse as before. So it never accepts what JSON.parse rejects, and where it answers it
// answers what JSON.parse would have given (test/domain/container-scan.test.ts checks both).

/** What parseContainer reads of a container's JSON: a field's string value, undefined when absent or not a string. */
export interface ContainerFields {
  id: string | undefined;
  /** annotation[MODEL_ANNOTATIONS[i]], in that order. */
  annotations: [string | undefined, string | undefined, string | undefined];
  configModel: string | undefined;
  /** The first `names` entry naming a model, `[/]model-<name>`, as `<name>`. */
  nameModel: string | undefined;
  status: string | undefined;
  running: string | undefined;
}

/** Nesting past this many levels, the document's own object counted, is left to JSON.parse (the scanner recurses). */
const MAX_DEPTH = 64;
/** V8 copies a substring shorter than this; a longer one keeps the whole document alive. */
const SLICE_COPIES_BELOW = 13;

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const COMMA = 44;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const MINUS = 45;
const PLUS = 43;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
const SLASH = 47;

// What follows a member or an element.
const BAD = -1;
const CLOSED = 0;
const MORE = 1;

// Where scanContainer keeps what it has read, by field.
const ID = 0;
const ANNOTATIONS = 1; // three slots
const CONFIG_MODEL = 4;
const NAME_MODEL = 5;
const STATE = 6; // Status, Running
const SLOTS = 8;

const TOP = ['id', 'names', 'state', 'config', 'annotation'] as const;
const STATE_KEYS = ['Status', 'Running'] as const;

/** The names scanContainer looks for (contract section 1). */
export interface ContainerFieldNames {
  /** The three annotation keys naming the model, in precedence order. */
  annotations: readonly [string, string, string];
  /** The config key naming the model, as a one-element list. */
  config: readonly [string];
  /** A container name `[/]<prefix><model>` names its model. */
  namePrefix: string;
}

/** The container fields of `text`, or undefined when JSON.parse must decide. */
export function scanContainer(text: string, names: ContainerFieldNames): ContainerFields | undefined {
  const s = new Scanner(text);
  if (!s.document(names.annotations, names.config, names.namePrefix)) return undefined;
  const v = s.slots;
  return { id: v[ID], annotations: [v[ANNOTATIONS], v[ANNOTATIONS + 1], v[ANNOTATIONS + 2]], configModel: v[CONFIG_MODEL], nameModel: v[NAME_MODEL], status: v[STATE], running: v[STATE + 1] };
}

class Scanner {
  i = 0;
  /** What was read, by field (ID, ANNOTATIONS, ...): a string value, or undefined. */
  readonly slots: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
  /** The last key read by key(): s[keyStart, keyEnd). */
  private keyStart = 0;
  private keyEnd = 0;
  private escaped = false;

  constructor(private readonly s: string) {}

  /** The whole text: one object, its fields read into the slots. */
  document(annotationKeys: readonly string[], configKeys: readonly string[], namePrefix: string): boolean {
    const v = this.slots;
    this.ws();
    if (this.code() !== OPEN_OBJECT) return false;
    if (!this.empty(CLOSE_OBJECT)) {
      for (;;) {
        if (!this.key() || !this.colon()) return false;
        let ok: boolean;
        // A repeated field replaces what came before it, as in JSON.parse: each starts afresh.
        switch (this.keyIndex(TOP)) {
          case 0:
            v[ID] = undefined;
            ok = this.code() === QUOTE ? (v[ID] = this.plainString()) !== undefined : this.skip(1);
            break;
          case 1:
            v[NAME_MODEL] = undefined;
            ok = this.code() === OPEN_ARRAY ? this.names(namePrefix) : this.skip(1);
            break;
          case 2:
            ok = this.fields(STATE_KEYS, STATE);
            break;
          case 3:
            ok = this.fields(configKeys, CONFIG_MODEL);
            break;
          case 4:
            ok = this.fields(annotationKeys, ANNOTATIONS);
            break;
          default:
            ok = this.skip(1);
        }
        const m = ok ? this.more(CLOSE_OBJECT) : BAD;
        if (m === BAD) return false;
        if (m === CLOSED) break;
      }
    }
    this.ws();
    return this.i === this.s.length;
  }

  code(): number {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    }
    this.i = i;
  }

  /** A ':' between whitespace. */
  colon(): boolean {
    this.ws();
    if (this.code() !== COLON) return false;
    this.i++;
    this.ws();
    return true;
  }

  /**
   * The string at i when it has no escape, as a string of its own (not a view that would keep
   * the whole text alive); undefined when there is none, it has an escape or it is invalid.
   */
  plainString(): string | undefined {
    const start = this.i + 1;
    const end = this.stringEnd();
    if (end < 0 || this.escaped) return undefined;
    this.i = end + 1;
    return copy(this.s, start, end);
  }

  /** A key without escapes (an escaped one could spell a field's name), kept as bounds: no string made. */
  key(): boolean {
    const end = this.stringEnd();
    if (end < 0 || this.escaped) return false;
    this.keyStart = this.i + 1;
    this.keyEnd = end;
    this.i = end + 1;
    return true;
  }

  /** The index in `names` of the last key read, -1 when it is none of them. */
  keyIndex(names: readonly string[]): number {
    const length = this.keyEnd - this.keyStart;
    for (let k = 0; k < names.length; k++) if (names[k]!.length === length && this.s.startsWith(names[k]!, this.keyStart)) return k;
    return -1;
  }

  /** Past the opening bracket at i and whitespace; true (and past `close`) when the object or array is empty. */
  empty(close: number): boolean {
    this.i++;
    this.ws();
    if (this.code() !== close) return false;
    this.i++;
    return true;
  }

  /** After a member or an element: MORE after a ',' (and whitespace), CLOSED after `close`, else BAD. */
  more(close: number): number {
    this.ws();
    const c = this.code();
    this.i++;
    if (c === close) return CLOSED;
    if (c !== COMMA) return BAD;
    this.ws();
    return MORE;
  }

  /** The index of the closing quote of the string at i (-1: not a valid string); sets `escaped`. */
  private stringEnd(): number {
    const s = this.s;
    if (this.code() !== QUOTE) return -1;
    this.escaped = false;
    for (let i = this.i + 1; i < s.length; ) {
      const c = s.charCodeAt(i);
      if (c === QUOTE) return i;
      if (c < 32) return -1;
      if (c !== BACKSLASH) {
        i++;
        continue;
      }
      this.escaped = true;
      const e = s.charCodeAt(i + 1);
      if (e === 117 /* u */) {
        for (let k = i + 2; k < i + 6; k++) if (!isHex(s.charCodeAt(k))) return -1;
        i += 6;
      } else if (e === QUOTE || e === BACKSLASH || e === SLASH || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) i += 2;
      else return -1;
    }
    return -1;
  }

  /**
   * An object whose members named in `wanted` are read into slots `base + index` (a string, or
   * undefined for another value; the last one wins, as in JSON.parse), or any other value
   * skipped (the slots then stay empty).
   */
  fields(wanted: readonly string[], base: number): boolean {
    const v = this.slots;
    for (let k = 0; k < wanted.length; k++) v[base + k] = undefined;
    if (this.code() !== OPEN_OBJECT) return this.skip(1);
    if (this.empty(CLOSE_OBJECT)) return true;
    for (;;) {
      if (!this.key() || !this.colon()) return false;
      const k = this.keyIndex(wanted);
      if (k < 0) {
        if (!this.skip(2)) return false;
      } else if (this.code() === QUOTE) {
        if ((v[base + k] = this.plainString()) === undefined) return false;
      } else {
        v[base + k] = undefined;
        if (!this.skip(2)) return false;
      }
      const m = this.more(CLOSE_OBJECT);
      if (m !== MORE) return m === CLOSED;
    }
  }

  /** The `names` array: the first plain string entry that reads `[/]<prefix><name>` gives `<name>`. */
  names(prefix: string): boolean {
    if (this.empty(CLOSE_ARRAY)) return true;
    for (;;) {
      if (this.code() === QUOTE) {
        const start = this.i + 1;
        const end = this.stringEnd();
        if (end < 0 || this.escaped) return false;
        this.i = end + 1;
        const from = this.s.charCodeAt(start) === SLASH ? start + 1 : start;
        if (this.slots[NAME_MODEL] === undefined && end - from > prefix.length && this.s.startsWith(prefix, from)) this.slots[NAME_MODEL] = copy(this.s, from + prefix.length, end);
      } else if (!this.skip(2)) return false;
      const m = this.more(CLOSE_ARRAY);
      if (m !== MORE) return m === CLOSED;
    }
  }

  /** Any JSON value at i, checked and passed over. */
  skip(depth: number): boolean {
    const c = this.code();
    if (c === QUOTE) {
      const end = this.stringEnd();
      if (end < 0) return false;
      this.i = end + 1;
      return true;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) return depth < MAX_DEPTH && this.skipContainer(c === OPEN_OBJECT, depth + 1);
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.skipNumber();
    return this.word('true') || this.word('false') || this.word('null');
  }

  private skipContainer(object: boolean, depth: number): boolean {
    const close = object ? CLOSE_OBJECT : CLOSE_ARRAY;
    if (this.empty(close)) return true;
    for (;;) {
      if (object) {
        const end = this.stringEnd();
        if (end < 0) return false;
        this.i = end + 1;
        if (!this.colon()) return false;
      }
      if (!this.skip(depth)) return false;
      const m = this.more(close);
      if (m !== MORE) return m === CLOSED;
    }
  }

  /** -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  private skipNumber(): boolean {
    if (this.code() === MINUS) this.i++;
    const first = this.code();
    if (first === ZERO) this.i++;
    else if (first > ZERO && first <= NINE) this.digits();
    else return false;
    if (this.code() === DOT) {
      this.i++;
      if (!this.digits()) return false;
    }
    const e = this.code();
    if (e === 101 || e === 69) {
      this.i++;
      const sign = this.code();
      if (sign === PLUS || sign === MINUS) this.i++;
      if (!this.digits()) return false;
    }
    return true;
  }

  /** One or more digits. */
  private digits(): boolean {
    const start = this.i;
    for (let c = this.code(); c >= ZERO && c <= NINE; c = this.code()) this.i++;
    return this.i > start;
  }

  private word(w: string): boolean {
    if (!this.s.startsWith(w, this.i)) return false;
    this.i += w.length;
    return true;
  }
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * s[start, end) as a string of its own: V8 makes a longer substring a view of `s`. The range is
 * part of a string without escapes (not always a whole one: a model name after its prefix).
 */
function copy(s: string, start: number, end: number): string {
  if (end - start < SLICE_COPIES_BELOW) return s.slice(start, end);
  // As a JSON string literal without escapes: JSON.parse copies its characters.
  return JSON.parse(`"${s.slice(start, end)}"`) as string;
}

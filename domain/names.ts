// The characters a resource name may not hold, one rule for every place a name comes in: the gRPC
// services (which refuse such a name in any field) and the definitions and keys read from etcd
// (which are invalid input then). A name one of them takes and the other refuses is half
// managed: a state written, listed and followed, but never readable by name (black-box probing:
// a model named with a zero-width joiner, a lone surrogate, U+FFFD).
import { nameNotUtf8 } from './states.js';

// C0 controls, DEL and C1 controls: they reach logs, terminals and the CLI's tables.
// eslint-disable-next-line no-control-regex
export const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Bidirectional overrides and isolates, which can make a name read as another (CVE-2021-42574).
export const BIDI = /[\u202a-\u202e\u2066-\u2069]/;
// Characters that show nothing or break a line: format characters (zero-width space and
// joiners U+200B–U+200D, marks U+200E/U+200F/U+061C, word joiner U+2060, BOM U+FEFF, soft hyphen,
// tags…), the other default-ignorable code points (variation selectors, Hangul fillers…) and the
// line and paragraph separators U+2028/U+2029. In a name they make one name read as another.
export const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}\u2028\u2029]/u;
/** Anything but printable ASCII: a name without it has none of the characters above. */
export const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/;

/**
 * What makes `name` one that cannot be read back by name, as a phrase completing "<name> ...",
 * or undefined: not UTF-8 as itself (U+FFFD, a lone surrogate), a control, bidirectional override
 * or invisible character. (Length and '/' are checked where they are, with their own messages.)
 */
export function nameCharacterProblem(name: string): string | undefined {
  if (!NOT_PRINTABLE_ASCII.test(name)) return undefined;
  if (nameNotUtf8(name)) return 'is not valid UTF-8 (a lone surrogate, or U+FFFD)';
  if (CONTROL.test(name)) return 'contains control characters';
  if (BIDI.test(name)) return 'contains bidirectional override characters';
  const m = INVISIBLE.exec(name);
  if (m) return `contains an invisible or separator character (U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
  return undefined;
}

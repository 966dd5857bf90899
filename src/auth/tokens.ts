// Bearer tokens and the identities they stand for, kept only as SHA-256 digests; a lookup
// compares every digest in constant time so the answer time does not depend on how much of a
// token matched. Token files are re-read when they change (src/grpc/credentials.ts): the new
// table replaces the old one in one assignment, so a lookup sees one table or the other.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TokenConfig } from './config.js';

/** A token file must hold at least this many bytes of token (e.g. `openssl rand -hex 32` gives 64). */
export const MIN_FILE_TOKEN_BYTES = 32;

interface Entry {
  digest: Buffer;
  identity: string;
}

export class TokenTable {
  private constructor(private entries: readonly Entry[]) {}

  static fromPairs(pairs: readonly { token: string; identity: string }[]): TokenTable {
    const seen = new Set<string>();
    const entries: Entry[] = [];
    for (const { token, identity } of pairs) {
      if (token.length === 0) throw new Error(`empty token for identity ${identity}`);
      if (seen.has(token)) throw new Error(`the same token is configured twice (identity ${identity})`);
      seen.add(token);
      entries.push({ digest: digest(token), identity });
    }
    return new TokenTable(entries);
  }

  /** Reads `tokenFile`s (first line, trimmed); throws naming the file when one cannot be read or is not a token. */
  static async load(config: readonly TokenConfig[], read = (f: string) => readFile(f, 'utf8')): Promise<TokenTable> {
    const texts = new Map<string, string>();
    for (const file of tokenFiles(config)) {
      try {
        texts.set(file, await read(file));
      } catch (err) {
        throw new Error(`cannot read token file ${file}: ${(err as Error).message}`, { cause: err });
      }
    }
    return TokenTable.fromConfig(config, (f) => texts.get(f) ?? '');
  }

  /** The table from the configuration and the token files' texts (first line, trimmed). */
  static fromConfig(config: readonly TokenConfig[], fileText: (file: string) => string): TokenTable {
    const pairs: { token: string; identity: string }[] = [];
    for (const t of config) {
      let token = t.token;
      if (token === undefined && t.tokenFile !== undefined) {
        const text = fileText(t.tokenFile);
        token = (text.split(/\r?\n/)[0] ?? '').trim();
        // The token is the first line: a blank one before it was "empty" (black-box probing).
        if (token.length === 0) throw new Error(text.trim() === '' ? `token file ${t.tokenFile} is empty` : `token file ${t.tokenFile}: its first line is blank (the token is read from the first line)`);
        const bytes = Buffer.byteLength(token, 'utf8');
        if (bytes < MIN_FILE_TOKEN_BYTES) {
          throw new Error(`token file ${t.tokenFile} holds a token of ${bytes} bytes: at least ${MIN_FILE_TOKEN_BYTES} are needed (e.g. openssl rand -hex 32)`);
        }
      }
      pairs.push({ token: token ?? '', identity: t.identity });
    }
    return TokenTable.fromPairs(pairs);
  }

  /** Puts `next`'s tokens in service in place of this table's (one assignment: atomic for lookups). */
  replaceWith(next: TokenTable): void {
    this.entries = next.entries;
  }

  get size(): number {
    return this.entries.length;
  }

  /** The identity a token stands for, or undefined. */
  lookup(token: string): string | undefined {
    const d = digest(token);
    let found: string | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, d) && found === undefined) found = e.identity;
    }
    return found;
  }
}

/** The distinct token files of a configuration, in order. */
export function tokenFiles(config: readonly TokenConfig[]): string[] {
  return [...new Set(config.flatMap((t) => (t.tokenFile !== undefined ? [t.tokenFile] : [])))];
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

// Bearer tokens and the identities they stand for. Tokens are read once (files at start) and
// kept only as SHA-256 digests; a lookup compares every digest in constant time so the answer
// time does not depend on how much of a token matched.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TokenConfig } from './config.js';

interface Entry {
  digest: Buffer;
  identity: string;
}

export class TokenTable {
  private constructor(private readonly entries: readonly Entry[]) {}

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

  /** Reads `tokenFile`s (first line, trimmed); throws naming the file when one cannot be read. */
  static async load(config: readonly TokenConfig[], read = (f: string) => readFile(f, 'utf8')): Promise<TokenTable> {
    const pairs: { token: string; identity: string }[] = [];
    for (const t of config) {
      let token = t.token;
      if (token === undefined && t.tokenFile !== undefined) {
        let text: string;
        try {
          text = await read(t.tokenFile);
        } catch (err) {
          throw new Error(`cannot read token file ${t.tokenFile}: ${(err as Error).message}`, { cause: err });
        }
        token = (text.split(/\r?\n/)[0] ?? '').trim();
        if (token.length === 0) throw new Error(`token file ${t.tokenFile} is empty`);
      }
      pairs.push({ token: token ?? '', identity: t.identity });
    }
    return TokenTable.fromPairs(pairs);
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

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

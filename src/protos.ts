// The project's .proto files, loaded at run time with the same options the generated types
// were made with (`npm run gen:proto`), so the types describe exactly what grpc-js hands over.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/** src/proto, found from either src/ (tsx) or dist/src/ (compiled). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'src', 'proto');
    if (existsSync(join(candidate, 'statemanager.proto'))) return candidate;
    const local = join(dir, 'proto');
    if (existsSync(join(local, 'statemanager.proto'))) return local;
    dir = dirname(dir);
  }
  throw new Error('cannot find the proto directory (src/proto)');
}

export function loadProto<T>(file: string): T {
  const dir = protoDir();
  const def = protoLoader.loadSync(join(dir, file), { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  return grpc.loadPackageDefinition(def) as unknown as T;
}

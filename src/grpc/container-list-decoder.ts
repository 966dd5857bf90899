// SendChangedContainerList's request, decoded by hand into the shape protobufjs gives
// (`ContainerList__Output`, the loader's options: defaults, arrays). A node's list of 2,000
// containers is about 650 KB; protobufjs decodes it into message objects and then copies them
// into plain ones: 7–8 µs a container here, against 3.7–4.2 µs for this decoder, and half the
// garbage, for the largest message the service takes, sent by every node.
// This decoder builds the plain objects at once and does not decode `stats`, which is never
// stored: its bytes are only stepped over.
//
// Well-formed messages decode exactly as protobufjs decodes them (a test compares both on random
// messages, unknown fields, repeated fields and invalid UTF-8 included: strings are decoded as
// Node decodes UTF-8, with U+FFFD for invalid bytes, which validation then refuses). A malformed
// message throws, and the call is refused INVALID_ARGUMENT like any undecodable request; so do two
// protobufjs lets through: a varint over 10 bytes in an unknown field, and a string running past
// the end of the message, which it cuts short. A known field with another wire
// type is stepped over as an unknown one (protobufjs reads it as its own type anyway, which may
// throw or give garbage).
//
// Bounded: grpc-js decodes a request before any handler runs, so the list's bounds
// (`ContainerListBounds`: containers, names and map entries) hold here. Past one, what it bounds
// is counted, not built, and the list carries the refusal (OVER_BOUND) that validation gives: a
// 2 MiB message of a million empty containers built a million objects (about 360 MB of heap, and
// two such calls held open ran a 512 MB heap out of memory) before the count was checked.
//
// Text is checked for UTF-8 here, on the bytes: a string whose bytes are not UTF-8 marks the list
// (INVALID_UTF8, with the field's path). A U+FFFD that the bytes hold (a valid character: Podman
// writes it for bytes it could not read in a label or its error text) is text like any other.
import { isUtf8 } from 'node:buffer';
import type { ContainerList__Output } from '../generated/monitoringserver/ContainerList.js';
import type { ContainerInfo__Output } from '../generated/monitoringserver/ContainerInfo.js';
import { setOwn } from './container-record.js';
import { quote } from './quote.js';

/** What one list may hold (grpc.maxContainersPerList, grpc.limits.namesPerContainer, grpc.limits.mapEntries). */
export interface ContainerListBounds {
  maxContainers: number;
  namesPerContainer: number;
  /** Entries of each of `state`, `config` and `annotation`. */
  mapEntries: number;
}

export const UNBOUNDED: ContainerListBounds = { maxContainers: Infinity, namesPerContainer: Infinity, mapEntries: Infinity };

/** On a decoded list: the first bound it is over, as validation's refusal ("containers has N entries, …"). */
export const OVER_BOUND = Symbol('over a bound of the list');
/** On a decoded list: the path of the first string whose bytes are not UTF-8 ("containers[2].image"). */
export const INVALID_UTF8 = Symbol('a string that is not UTF-8');

export type DecodedContainerList = ContainerList__Output & { [OVER_BOUND]?: string; [INVALID_UTF8]?: string };

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

// Tags (field number << 3 | wire type) of the fields decoded.
const LIST_NODE_NAME = (1 << 3) | BYTES;
const LIST_CONTAINERS = (2 << 3) | BYTES;
const INFO_ID = (1 << 3) | BYTES;
const INFO_NAMES = (2 << 3) | BYTES;
const INFO_IMAGE = (3 << 3) | BYTES;
const INFO_STATE = (4 << 3) | BYTES;
const INFO_CONFIG = (5 << 3) | BYTES;
const INFO_ANNOTATION = (6 << 3) | BYTES;
const ENTRY_KEY = (1 << 3) | BYTES;
const ENTRY_VALUE = (2 << 3) | BYTES;

export class MalformedMessageError extends Error {
  constructor(what: string, at: number) {
    super(`malformed ContainerList: ${what} at byte ${at}`);
    this.name = 'MalformedMessageError';
  }
}

/** Node's Buffer has utf8Slice (what toString('utf8') calls); @types/node does not declare it. */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

class Cursor {
  pos = 0;
  /** The last string read was not UTF-8 (its bytes; a U+FFFD they hold is text). */
  invalid = false;
  /** The first bound passed, as validation words it. */
  overBound: string | undefined;
  /** Where the first string that is not UTF-8 was. */
  invalidAt: string | undefined;
  /** The last map entry read (mapEntry). */
  private key = '';
  private value = '';

  constructor(
    private readonly buf: Buffer,
    private readonly bounds: ContainerListBounds,
  ) {}

  /** A varint's low 32 bits, unsigned (as protobufjs's uint32); at most 10 bytes. */
  varint(end: number): number {
    const b = this.buf;
    let pos = this.pos;
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= end) throw new MalformedMessageError('truncated varint', pos);
      if (shift >= 70) throw new MalformedMessageError('varint longer than 10 bytes', pos);
      const byte = b[pos++]!;
      if (shift < 32) value |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
    }
    this.pos = pos;
    return value >>> 0;
  }

  /** The end of a length-delimited field starting here, within `end`. */
  delimited(end: number): number {
    const at = this.pos;
    const len = this.varint(end);
    if (len > end - this.pos) throw new MalformedMessageError(`length ${len} past the end of its message`, at);
    return this.pos + len;
  }

  string(end: number): string {
    const stop = this.delimited(end);
    // Buffer's own UTF-8 slice, as protobufjs calls it: toString's argument handling around it
    // cost as much as the decoding, for the 20-odd short strings of each container.
    const s = (this.buf as Utf8Sliceable).utf8Slice(this.pos, stop);
    // Only a string with U+FFFD can come from bytes that are not UTF-8.
    this.invalid = s.includes('\uFFFD') && !isUtf8(this.buf.subarray(this.pos, stop));
    this.pos = stop;
    return s;
  }

  /** Marks the list at the first string that was not UTF-8 (`path` built only then). */
  private checkText(path: () => string): void {
    if (this.invalid && this.invalidAt === undefined) this.invalidAt = path();
  }

  private over(message: string): void {
    this.overBound ??= message;
  }

  advance(n: number, end: number): void {
    if (n > end - this.pos) throw new MalformedMessageError('truncated field', this.pos);
    this.pos += n;
  }

  /** Steps over a field whose tag was read (a group with every field inside it). */
  skip(tag: number, end: number): void {
    let depth = 0;
    for (;;) {
      switch (tag & 7) {
        case VARINT:
          this.varint(end);
          break;
        case FIXED64:
          this.advance(8, end);
          break;
        case BYTES:
          this.pos = this.delimited(end);
          break;
        case FIXED32:
          this.advance(4, end);
          break;
        case START_GROUP:
          depth++;
          break;
        case END_GROUP:
          if (depth === 0) throw new MalformedMessageError('end of a group never started', this.pos);
          depth--;
          break;
        default:
          throw new MalformedMessageError(`wire type ${tag & 7}`, this.pos);
      }
      if (depth === 0) return;
      tag = this.varint(end);
    }
  }

  /** One map entry (key 1, value 2; absent ones empty) into `this.key` and `this.value`; whether either was not UTF-8. */
  private mapEntry(end: number): boolean {
    const stop = this.delimited(end);
    this.key = '';
    this.value = '';
    let invalid = false;
    while (this.pos < stop) {
      const tag = this.varint(stop);
      if (tag === ENTRY_KEY) this.key = this.string(stop);
      else if (tag === ENTRY_VALUE) this.value = this.string(stop);
      else {
        this.skip(tag, stop);
        continue;
      }
      invalid ||= this.invalid;
    }
    return invalid;
  }

  /**
   * A map entry set as protobufjs sets it (a key given again replaces its value), while the map
   * holds fewer than its bound of keys; returns how many it holds, or would (a key past the bound
   * is counted, not set).
   */
  private entryInto(into: Record<string, string>, size: number, end: number, at: number, field: string): number {
    const invalid = this.mapEntry(end);
    if (invalid && this.invalidAt === undefined) this.invalidAt = `containers[${at}].${field}[${quote(this.key)}]`;
    if (size < this.bounds.mapEntries) {
      if (Object.hasOwn(into, this.key)) {
        setOwn(into, this.key, this.value);
        return size;
      }
      setOwn(into, this.key, this.value);
      return size + 1;
    }
    if (Object.hasOwn(into, this.key)) setOwn(into, this.key, this.value);
    else size++;
    return size;
  }

  containerInfo(end: number, at: number): ContainerInfo__Output {
    const stop = this.delimited(end);
    const info: ContainerInfo__Output = { id: '', names: [], image: '', state: {}, config: {}, annotation: {}, stats: {} };
    const { namesPerContainer, mapEntries } = this.bounds;
    let names = 0;
    let state = 0;
    let config = 0;
    let annotation = 0;
    while (this.pos < stop) {
      const tag = this.varint(stop);
      switch (tag) {
        case INFO_ID:
          info.id = this.string(stop);
          this.checkText(() => `containers[${at}].id`);
          break;
        case INFO_NAMES:
          if (names++ < namesPerContainer) {
            info.names.push(this.string(stop));
            this.checkText(() => `containers[${at}].names[${names - 1}]`);
          } else this.pos = this.delimited(stop);
          break;
        case INFO_IMAGE:
          info.image = this.string(stop);
          this.checkText(() => `containers[${at}].image`);
          break;
        case INFO_STATE:
          state = this.entryInto(info.state, state, stop, at, 'state');
          break;
        case INFO_CONFIG:
          config = this.entryInto(info.config, config, stop, at, 'config');
          break;
        case INFO_ANNOTATION:
          annotation = this.entryInto(info.annotation, annotation, stop, at, 'annotation');
          break;
        default:
          this.skip(tag, stop); // stats (7) among them: never stored
      }
    }
    // Worded as validation words them (validateContainerList), in its order.
    if (names > namesPerContainer) this.over(`containers[${at}].names has ${names} entries, more than ${namesPerContainer}`);
    if (state > mapEntries) this.over(`containers[${at}].state has ${state} entries, more than ${mapEntries}`);
    if (config > mapEntries) this.over(`containers[${at}].config has ${config} entries, more than ${mapEntries}`);
    if (annotation > mapEntries) this.over(`containers[${at}].annotation has ${annotation} entries, more than ${mapEntries}`);
    return info;
  }
}

export function decodeContainerList(buf: Buffer, bounds: ContainerListBounds = UNBOUNDED): DecodedContainerList {
  const c = new Cursor(buf, bounds);
  const end = buf.length;
  const list: DecodedContainerList = { node_name: '', containers: [] };
  let containers = 0;
  while (c.pos < end) {
    const tag = c.varint(end);
    if (tag === LIST_NODE_NAME) {
      list.node_name = c.string(end);
      if (c.invalid) c.invalidAt ??= 'node_name';
    } else if (tag === LIST_CONTAINERS) {
      // Past the bound a container is stepped over, only counted.
      if (containers < bounds.maxContainers) list.containers.push(c.containerInfo(end, containers));
      else c.pos = c.delimited(end);
      containers++;
    } else c.skip(tag, end);
  }
  // The count first, as validation checks it first.
  if (containers > bounds.maxContainers) list[OVER_BOUND] = `containers has ${containers} entries, more than the maximum of ${bounds.maxContainers}`;
  else if (c.overBound !== undefined) list[OVER_BOUND] = c.overBound;
  if (c.invalidAt !== undefined) list[INVALID_UTF8] = c.invalidAt;
  return list;
}

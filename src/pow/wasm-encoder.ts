/**
 * The few pieces of the WebAssembly binary format that the SHA-256 search kernel needs:
 * i32-only functions, one exported memory, structured control flow. Nothing else, so that the
 * whole encoder stays short enough to check against the spec by eye
 * (https://webassembly.github.io/spec/core/binary/). No Node APIs: it also runs in a Web Worker.
 */

/** Opcodes used by the kernel generator (spec section 5.4). */
export const Op = {
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Or: 0x72,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i32Rotr: 0x78,
} as const;

/** Block type "no results". */
export const VOID = 0x40;
const I32 = 0x7f;

/** Unsigned LEB128 (indices, sizes, counts). */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of an int32 (the immediate of i32.const). */
export function sleb(n: number): number[] {
  n |= 0;
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

export interface FuncDef {
  name: string;
  params: number;
  results: 0 | 1;
  /** Extra i32 locals after the parameters. */
  locals: number;
  /** Instructions, without the final `end`. */
  body: number[];
}

/** A module of i32 functions, each exported under its name, plus one exported memory "mem". */
export function encodeModule(funcs: FuncDef[], memoryPages: number): Uint8Array {
  const types = funcs.map((f) => [0x60, ...vec(Array(f.params).fill([I32])), ...vec(Array(f.results).fill([I32]))]);
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, ...uleb(memoryPages)]])),
    ...section(7, vec([...funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]), [...name('mem'), 0x02, 0x00]])),
    ...section(
      10,
      vec(
        funcs.map((f) => {
          const locals = f.locals > 0 ? vec([[...uleb(f.locals), I32]]) : vec([]);
          const code = [...locals, ...f.body, Op.end];
          return [...uleb(code.length), ...code];
        }),
      ),
    ),
  ];
  return Uint8Array.from(bytes);
}

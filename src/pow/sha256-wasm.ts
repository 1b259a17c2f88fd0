/**
 * The WebAssembly nonce search, generated at load time from this file.
 *
 * Why a generator in TS rather than a committed .wasm or hand-written WAT: the search is 64
 * unrolled SHA-256 rounds with constants folded in, which nobody would write or review as WAT
 * either; the generator below *is* the readable source, it needs no assembler package or build
 * step, the bytes are the same on every run (reproducible by construction), and it runs as-is
 * in a browser Web Worker. The test suite checks its results against node:crypto.
 *
 * How: SHA-256 is written once, symbolically, as a DAG of i32 operations. Every value carries
 * the loop level at which it can change:
 *   0  known while generating (K constants, padding, length words): folded away,
 *   1  per call (id, token index: W0..W10, rounds 0..9),
 *   2  per 65,536 nonces (the nonce's upper 48 bits: W10, W11, rounds 10..11, some of W16..W24),
 *   3  per nonce (W12 and everything after it).
 * Each operation is emitted at the level of its newest input, i.e. loop-invariant code is
 * hoisted by construction; repeated subexpressions are shared (the Maj trick below relies on
 * it), and only what the two checked digest words need is emitted.
 *
 * Exported function: search(hi, lo, count, m0, m1) -> index of the first nonce from
 * hi * 2^32 + lo whose digest has (H0 & m0) | (H1 & m1) == 0, or -1. Memory holds W0..W10.
 */
import { FuncDef, Op, VOID, encodeModule, sleb, uleb } from './wasm-encoder.js';
import { SHA256_IV, SHA256_K, TEMPLATE_WORDS, W12_PADDING, W15_LENGTH } from './token-block.js';

type Level = 1 | 2 | 3;

interface DagNode {
  readonly id: number;
  readonly level: Level;
  /** An opcode for binary operations, or 'load' / 'param' for leaves. */
  readonly op: number | 'load' | 'param';
  readonly args: readonly Val[];
  /** Byte offset of a load, local index of a param. */
  readonly imm: number;
  live: boolean;
  local: number;
}

/** A literal int32 (level 0) or a node. */
type Val = number | DagNode;

const COMMUTATIVE = new Set<number>([Op.i32Add, Op.i32And, Op.i32Or, Op.i32Xor]);

const FOLD: Record<number, (x: number, y: number) => number> = {
  [Op.i32Add]: (x, y) => (x + y) | 0,
  [Op.i32And]: (x, y) => x & y,
  [Op.i32Or]: (x, y) => x | y,
  [Op.i32Xor]: (x, y) => x ^ y,
  [Op.i32Shl]: (x, y) => x << y,
  [Op.i32ShrU]: (x, y) => (x >>> y) | 0,
  [Op.i32Rotr]: (x, y) => ((x >>> y) | (x << (32 - y))) | 0,
};

const levelOf = (v: Val): 0 | Level => (typeof v === 'number' ? 0 : v.level);
const keyOf = (v: Val): string => (typeof v === 'number' ? `#${v}` : `n${v.id}`);

/** Builds the DAG with folding, identities and common-subexpression sharing. */
class Dag {
  readonly nodes: DagNode[] = [];
  private readonly shared = new Map<string, DagNode>();

  leaf(op: 'load' | 'param', imm: number, level: Level): DagNode {
    const node: DagNode = { id: this.nodes.length, level, op, args: [], imm, live: false, local: -1 };
    this.nodes.push(node);
    return node;
  }

  bin(op: number, a: Val, b: Val): Val {
    if (typeof a === 'number' && typeof b === 'number') return FOLD[op]!(a, b);
    if (COMMUTATIVE.has(op) && typeof a === 'number') [a, b] = [b, a];
    if (typeof b === 'number') {
      if (b === 0 && op !== Op.i32And) return a;
      if (b === 0) return 0;
      if (b === -1 && op === Op.i32And) return a;
    }
    let keys = [keyOf(a), keyOf(b)];
    if (COMMUTATIVE.has(op)) keys = keys.sort();
    const key = `${op}:${keys.join(':')}`;
    const known = this.shared.get(key);
    if (known) return known;
    const level = Math.max(levelOf(a), levelOf(b)) as Level;
    const node: DagNode = { id: this.nodes.length, level, op, args: [a, b], imm: 0, live: false, local: -1 };
    this.nodes.push(node);
    this.shared.set(key, node);
    return node;
  }

  add = (a: Val, b: Val) => this.bin(Op.i32Add, a, b);
  and = (a: Val, b: Val) => this.bin(Op.i32And, a, b);
  or = (a: Val, b: Val) => this.bin(Op.i32Or, a, b);
  xor = (a: Val, b: Val) => this.bin(Op.i32Xor, a, b);
  shl = (a: Val, n: number) => this.bin(Op.i32Shl, a, n);
  shr = (a: Val, n: number) => this.bin(Op.i32ShrU, a, n);
  rotr = (a: Val, n: number) => this.bin(Op.i32Rotr, a, n);

  /** Sum with the literals folded and the oldest terms added first, so partial sums hoist. */
  sum(...terms: Val[]): Val {
    let acc: Val = terms.filter((t) => typeof t === 'number').reduce((x, y) => (x + y) | 0, 0);
    const nodes = terms.filter((t): t is DagNode => typeof t !== 'number').sort((x, y) => x.level - y.level);
    for (const n of nodes) acc = this.add(acc, n);
    return acc;
  }

  markLive(v: Val): void {
    if (typeof v === 'number' || v.live) return;
    v.live = true;
    for (const a of v.args) this.markLive(a);
  }
}

/** SHA-256 of the token block over the DAG; returns the digest words H0 and H1. */
function buildSha256(dag: Dag, w: Val[]): [Val, Val] {
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15]!;
    const y = w[t - 2]!;
    const s0 = dag.xor(dag.xor(dag.rotr(x, 7), dag.rotr(x, 18)), dag.shr(x, 3));
    const s1 = dag.xor(dag.xor(dag.rotr(y, 17), dag.rotr(y, 19)), dag.shr(y, 10));
    w[t] = dag.sum(s1, w[t - 7]!, s0, w[t - 16]!);
  }
  let [a, b, c, d, e, f, g, h] = Array.from(SHA256_IV, (v) => v | 0) as [Val, Val, Val, Val, Val, Val, Val, Val];
  for (let t = 0; t < 64; t++) {
    const S1 = dag.xor(dag.xor(dag.rotr(e, 6), dag.rotr(e, 11)), dag.rotr(e, 25));
    const ch = dag.xor(g, dag.and(e, dag.xor(f, g)));
    const t1 = dag.sum(SHA256_K[t]! | 0, w[t]!, h, S1, ch);
    const S0 = dag.xor(dag.xor(dag.rotr(a, 2), dag.rotr(a, 13)), dag.rotr(a, 22));
    // Maj(a,b,c) = b ^ ((a^b) & (b^c)): this round's a^b is the next round's b^c, shared.
    const maj = dag.xor(b, dag.and(dag.xor(a, b), dag.xor(b, c)));
    const t2 = dag.add(S0, maj);
    [h, g, f, e, d, c, b, a] = [g, f, e, dag.add(d, t1), c, b, a, dag.add(t1, t2)];
  }
  return [dag.add(a, SHA256_IV[0]! | 0), dag.add(b, SHA256_IV[1]! | 0)];
}

// Parameters and fixed locals of `search`.
const HI = 0, LO = 1, COUNT = 2, M0 = 3, M1 = 4, I = 5, FIRST_NODE_LOCAL = 6;

function get(v: Val): number[] {
  return typeof v === 'number' ? [Op.i32Const, ...sleb(v)] : [Op.localGet, ...uleb(v.local)];
}

/** The search function's definition. */
export function searchFunction(): FuncDef {
  const dag = new Dag();
  const w: Val[] = [];
  for (let t = 0; t < TEMPLATE_WORDS - 1; t++) w.push(dag.leaf('load', t * 4, 1));
  const base10 = dag.leaf('load', (TEMPLATE_WORDS - 1) * 4, 1);
  const hi = dag.leaf('param', HI, 2);
  const loOuter = dag.leaf('param', LO, 2);
  const loInner = dag.leaf('param', LO, 3);
  w.push(dag.or(base10, dag.shr(hi, 16)));
  w.push(dag.or(dag.shl(hi, 16), dag.shr(loOuter, 16)));
  w.push(dag.or(dag.shl(loInner, 16), W12_PADDING));
  w.push(0, 0, W15_LENGTH);
  const [h0, h1] = buildSha256(dag, w);
  dag.markLive(h0);
  dag.markLive(h1);

  const code: number[][] = [[], [], [], []];
  let locals = 0;
  for (const node of dag.nodes) {
    if (!node.live) continue;
    node.local = FIRST_NODE_LOCAL + locals++;
    const out = code[node.level]!;
    if (node.op === 'load') out.push(Op.i32Const, 0, Op.i32Load, 2, ...uleb(node.imm));
    else if (node.op === 'param') out.push(Op.localGet, ...uleb(node.imm));
    else out.push(...get(node.args[0]!), ...get(node.args[1]!), node.op);
    out.push(Op.localSet, ...uleb(node.local));
  }

  const body = [
    ...[Op.localGet, COUNT, Op.i32Eqz, Op.if, VOID, Op.i32Const, ...sleb(-1), Op.return, Op.end],
    ...code[1]!,
    ...[Op.loop, VOID],
    ...code[2]!,
    ...[Op.loop, VOID],
    ...code[3]!,
    // Found: H0 has the bits, then (rarely needed) H1.
    ...[...get(h0), Op.localGet, M0, Op.i32And, Op.i32Eqz, Op.if, VOID],
    ...[...get(h1), Op.localGet, M1, Op.i32And, Op.i32Eqz, Op.if, VOID, Op.localGet, I, Op.return, Op.end],
    Op.end,
    // i += 1; stop after count nonces.
    ...[Op.localGet, I, Op.i32Const, 1, Op.i32Add, Op.localTee, I, Op.localGet, COUNT, Op.i32Eq],
    ...[Op.if, VOID, Op.i32Const, ...sleb(-1), Op.return, Op.end],
    // lo += 1; stay in the inner loop while only W12 changes.
    ...[Op.localGet, LO, Op.i32Const, 1, Op.i32Add, Op.localTee, LO, Op.i32Const, ...sleb(0xffff), Op.i32And],
    ...[Op.brIf, 0, Op.end],
    // Carry into hi when lo wrapped.
    ...[Op.localGet, LO, Op.i32Eqz, Op.if, VOID, Op.localGet, HI, Op.i32Const, 1, Op.i32Add, Op.localSet, HI, Op.end],
    ...[Op.br, 0, Op.end],
    ...[Op.i32Const, ...sleb(-1)],
  ];
  return { name: 'search', params: 5, results: 1, locals: FIRST_NODE_LOCAL - 5 + locals, body };
}

let bytes: Uint8Array | undefined;

/** The kernel module's bytes (generated once per process or worker). */
export function searchModuleBytes(): Uint8Array {
  bytes ??= encodeModule([searchFunction()], 1);
  return bytes;
}

/** The subset of the WebAssembly JS API used here (lib "dom" is not part of this build). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  compile(bytes: Uint8Array): Promise<object>;
}

/** The WebAssembly API, or undefined where it is disabled. */
export function wasmApi(): WasmApi | undefined {
  return (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
}

export type RawSearch = (template: Uint32Array, hi: number, lo: number, count: number, m0: number, m1: number) => number;

/** A search bound to a fresh instance of a compiled kernel module. */
export function instantiateSearch(module: object): RawSearch {
  const api = wasmApi()!;
  const { exports } = new api.Instance(module, {});
  const memory = new Uint32Array((exports.mem as { buffer: ArrayBuffer }).buffer, 0, TEMPLATE_WORDS);
  const search = exports.search as (hi: number, lo: number, count: number, m0: number, m1: number) => number;
  return (template, hi, lo, count, m0, m1) => {
    memory.set(template);
    return search(hi | 0, lo | 0, count | 0, m0, m1);
  };
}

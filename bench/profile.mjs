// `make profile`: where a variant's wasm time goes, outside Envoy. A minimal proxy-wasm ABI
// 0.2.1 host in Node (V8, the engine Envoy embeds) loads the variant's modules with its
// policies, replays its benchmark requests (the same headers, body and single-use signatures
// as `make bench`) and prints, per request: microseconds in each callback, the host calls the
// module made (each one is work on Envoy's side too), and V8's sampling profile of the wasm
// functions (self time). Modules must keep their name section (`make profile` builds them so).
//
//   node profile.mjs <dump.json> <variant name (or part of it)> <requests> <dist dir>
import { readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { performance } from "node:perf_hooks";
import { randomFillSync } from "node:crypto";

const [dumpPath, variantName, count, dist] = process.argv.slice(2);
const variants = JSON.parse(readFileSync(dumpPath, "utf8"));
const variant = variants.find((v) => v.name === variantName) ?? variants.find((v) => v.name.includes(variantName));
if (!variant) throw new Error(`no variant named ${variantName} in ${dumpPath}`);
const requests = Number(count);

const calls = new Map(); // host call -> count
const sharedData = new Map(); // key -> { value, cas }
let nextCas = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

function module(name, policy, rootId) {
  let instance;
  const mem = () => new Uint8Array(instance.exports.memory.buffer);
  const view = () => new DataView(instance.exports.memory.buffer);
  const str = (ptr, len) => dec.decode(mem().subarray(ptr, ptr + len));
  const bytes = (ptr, len) => mem().slice(ptr, ptr + len);
  // Hand bytes to the module: memory it allocates, address and size at the return pointers.
  const give = (data, retPtr, retSize) => {
    const ptr = data.length ? instance.exports.proxy_on_memory_allocate(data.length) : 0;
    mem().set(data, ptr);
    view().setUint32(retPtr, ptr, true);
    view().setUint32(retSize, data.length, true);
    return 0;
  };
  const serializePairs = (pairs) => {
    const parts = pairs.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
    let size = 4 + parts.length * 8;
    for (const [k, v] of parts) size += k.length + v.length + 2;
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, parts.length, true);
    let at = 4;
    for (const [k, v] of parts) {
      dv.setUint32(at, k.length, true);
      dv.setUint32(at + 4, v.length, true);
      at += 8;
    }
    for (const [k, v] of parts) {
      out.set(k, at);
      at += k.length + 1;
      out.set(v, at);
      at += v.length + 1;
    }
    return out;
  };
  const deserializePairs = (data) => {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const n = dv.getUint32(0, true);
    const lens = [];
    let at = 4;
    for (let i = 0; i < n; i++, at += 8) lens.push([dv.getUint32(at, true), dv.getUint32(at + 4, true)]);
    const pairs = [];
    for (const [kl, vl] of lens) {
      const k = dec.decode(data.subarray(at, at + kl));
      at += kl + 1;
      const v = dec.decode(data.subarray(at, at + vl));
      at += vl + 1;
      pairs.push([k, v]);
    }
    return pairs;
  };
  const state = { maps: [[], [], [], []], buffers: [], local: null, config: enc.encode(policy) };
  const counted = (name, f) => (...args) => {
    calls.set(name, (calls.get(name) || 0) + 1);
    return f(...args);
  };
  const mapOps = {
    proxy_get_header_map_pairs: (t, rp, rs) => give(serializePairs(state.maps[t] || []), rp, rs),
    proxy_get_header_map_value: (t, kp, ks, rp, rs) => {
      const k = str(kp, ks);
      const hit = (state.maps[t] || []).find(([n]) => n === k);
      return hit ? give(enc.encode(hit[1]), rp, rs) : 1;
    },
    proxy_set_header_map_pairs: (t, p, s) => ((state.maps[t] = deserializePairs(bytes(p, s))), 0),
    proxy_add_header_map_value: (t, kp, ks, vp, vs) => (state.maps[t].push([str(kp, ks), str(vp, vs)]), 0),
    proxy_replace_header_map_value: (t, kp, ks, vp, vs) => {
      const k = str(kp, ks);
      state.maps[t] = state.maps[t].filter(([n]) => n !== k);
      state.maps[t].push([k, str(vp, vs)]);
      return 0;
    },
    proxy_remove_header_map_value: (t, kp, ks) => {
      const k = str(kp, ks);
      state.maps[t] = state.maps[t].filter(([n]) => n !== k);
      return 0;
    },
  };
  const env = {
    ...mapOps,
    proxy_log: (level, p, s) => (level >= 3 ? console.error(`[${name}] ${str(p, s)}`) : 0, 0),
    proxy_get_buffer_bytes: (t, start, max, rp, rs) => {
      const b = t === 7 || t === 6 ? state.config : state.buffers[t];
      if (!b) return 1;
      return give(b.subarray(start >>> 0, Math.min(b.length, (start >>> 0) + (max >>> 0))), rp, rs);
    },
    proxy_set_buffer_bytes: (t, start, size, p, s) => {
      const b = state.buffers[t] || new Uint8Array();
      const head = b.subarray(0, start);
      const tail = b.subarray(start + size);
      const out = new Uint8Array(head.length + s + tail.length);
      out.set(head);
      out.set(bytes(p, s), head.length);
      out.set(tail, head.length + s);
      state.buffers[t] = out;
      return 0;
    },
    proxy_get_property: (p, s, rp, rs) => {
      const path = str(p, s).split("\0").join(".");
      const known = { "source.address": "127.0.0.1:40000", "plugin_root_id": name };
      return path in known ? give(enc.encode(known[path]), rp, rs) : 1;
    },
    proxy_set_property: () => 0,
    proxy_get_shared_data: (kp, ks, rp, rs, casPtr) => {
      const entry = sharedData.get(str(kp, ks));
      if (!entry) return 1;
      view().setUint32(casPtr, entry.cas, true);
      return give(entry.value, rp, rs);
    },
    proxy_set_shared_data: (kp, ks, vp, vs, cas) => {
      const k = str(kp, ks);
      const entry = sharedData.get(k);
      if (cas !== 0 && entry && entry.cas !== cas) return 8;
      sharedData.set(k, { value: bytes(vp, vs), cas: nextCas++ });
      return 0;
    },
    proxy_get_current_time_nanoseconds: (rp) => (view().setBigUint64(rp, BigInt(Date.now()) * 1000000n, true), 0),
    proxy_define_metric: (type, p, s, rp) => (view().setUint32(rp, 1, true), 0),
    proxy_increment_metric: () => 0,
    proxy_send_local_response: (status, dp, ds, bp, bs) => ((state.local = { status, body: str(bp, bs) }), 0),
    proxy_set_tick_period_milliseconds: () => 0,
    proxy_set_effective_context: () => 0,
    proxy_continue_stream: () => 0,
    proxy_close_stream: () => 0,
    proxy_done: () => 0,
    proxy_get_status: () => 1,
  };
  for (const k of ["proxy_http_call", "proxy_grpc_call", "proxy_grpc_stream", "proxy_grpc_send",
    "proxy_grpc_cancel", "proxy_grpc_close", "proxy_call_foreign_function", "proxy_register_shared_queue",
    "proxy_resolve_shared_queue", "proxy_enqueue_shared_queue", "proxy_dequeue_shared_queue"]) {
    env[k] = () => 2;
  }
  const wasi = {
    random_get: (p, n) => (randomFillSync(mem().subarray(p, p + n)), 0),
    environ_sizes_get: (c, s) => (view().setUint32(c, 0, true), view().setUint32(s, 0, true), 0),
    environ_get: () => 0,
    clock_time_get: (id, precision, rp) => (view().setBigUint64(rp, BigInt(Math.round(performance.timeOrigin + performance.now())) * 1000000n, true), 0),
    fd_write: (fd, iovs, n, written) => {
      let total = 0;
      for (let i = 0; i < n; i++) total += view().getUint32(iovs + i * 8 + 4, true);
      view().setUint32(written, total, true);
      return 0;
    },
    proc_exit: (code) => { throw new Error(`proc_exit(${code})`); },
  };
  for (const k of Object.keys(env)) env[k] = counted(k, env[k]);
  const wasm = new WebAssembly.Module(readFileSync(`${dist}/${name}.wasm`));
  instance = new WebAssembly.Instance(wasm, { env, wasi_snapshot_preview1: wasi });
  instance.exports._initialize?.();
  const x = instance.exports;
  x.proxy_on_context_create(rootId, 0);
  if (!x.proxy_on_vm_start(rootId, 0)) throw new Error(`${name}: vm start failed`);
  if (!x.proxy_on_configure(rootId, state.config.length)) throw new Error(`${name}: bad policy`);
  return { name, x, state, rootId };
}

const filters = variant.wasm.map(([name, policy], i) => module(name, policy, 1 + i));
const body = enc.encode(variant.body);
const phases = { request_headers: 0, request_body: 0, response_headers: 0, done: 0 };
const time = (phase, f) => {
  const t = performance.now();
  const r = f();
  phases[phase] += performance.now() - t;
  return r;
};

function oneRequest(i, measured) {
  const rotating = variant.rotating.length ? variant.rotating[i % variant.rotating.length] : [];
  const fields = variant.headers.filter(([k]) => !rotating.some(([r]) => r === k)).concat(rotating);
  const request = [[":method", "POST"], [":path", variant.path], [":authority", "localhost"],
    [":scheme", "http"], ["content-length", String(body.length)], ["x-request-id", `req-${i}`], ...fields];
  const ctx = 1000 + i;
  const t = measured ? time : (_, f) => f();
  for (const f of filters) {
    const { x, state } = f;
    state.maps = [request.slice(), [], [["content-type", "application/json"], [":status", "200"], ["content-length", "2"]], []];
    state.buffers = [body, new Uint8Array([123, 125])];
    state.local = null;
    x.proxy_on_context_create(ctx, f.rootId);
    const a = t("request_headers", () => x.proxy_on_request_headers(ctx, request.length, 0));
    if (state.local) throw new Error(`${f.name}: request ${i} denied: ${state.local.status} ${state.local.body}`);
    t("request_body", () => x.proxy_on_request_body(ctx, body.length, 1));
    if (state.local) throw new Error(`${f.name}: request ${i} denied: ${state.local.status} ${state.local.body}`);
    t("response_headers", () => x.proxy_on_response_headers(ctx, 3, 0));
    t("response_headers", () => x.proxy_on_response_body(ctx, 2, 1));
    t("done", () => { x.proxy_on_done(ctx); x.proxy_on_log(ctx); x.proxy_on_delete(ctx); });
    void a;
  }
}

// Warm up (V8 tiers the hot functions up), then measure and sample.
const warm = Math.min(20000, requests);
for (let i = 0; i < warm; i++) oneRequest(i, false);
for (const k of Object.keys(phases)) phases[k] = 0;
calls.clear();
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 50 });
await session.post("Profiler.start");
const start = performance.now();
for (let i = warm; i < warm + requests; i++) oneRequest(i, true);
const elapsed = performance.now() - start;
const { profile } = await session.post("Profiler.stop");

const perRequest = (ms) => ((ms * 1000) / requests).toFixed(1);
console.log(`${variant.name}: ${requests} requests after ${warm} warm-up, ${perRequest(elapsed)} µs each in all\n`);
console.log("| phase | µs per request |\n|---|---:|");
for (const [k, v] of Object.entries(phases)) console.log(`| ${k} | ${perRequest(v)} |`);
console.log("\n| host call | per request |\n|---|---:|");
for (const [k, v] of [...calls].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${(v / requests).toFixed(1)} |`);

// Self time per function, from the samples: the wasm functions (demangled), what the mock host
// itself costs (JS: its share stands for Envoy's side of the host calls), GC.
function demangle(sym) {
  let m = /^_ZN(.*)E(\.\d+)?$/.exec(sym);
  if (!m) return sym.replace(/^_R\w*?(\d+)(\w+)$/, "$2");
  const parts = [];
  for (let rest = m[1]; rest.length; ) {
    const n = /^\d+/.exec(rest);
    if (!n) break;
    parts.push(rest.slice(n[0].length, n[0].length + Number(n[0])));
    rest = rest.slice(n[0].length + Number(n[0]));
  }
  if (/^h[0-9a-f]{16}$/.test(parts.at(-1))) parts.pop();
  return parts.join("::").replace(/\$LT\$/g, "<").replace(/\$GT\$/g, ">").replace(/\$u20\$/g, " ")
    .replace(/\$C\$/g, ",").replace(/\$RF\$/g, "&").replace(/\$BP\$/g, "*").replace(/\$u7b\$/g, "{")
    .replace(/\$u7d\$/g, "}").replace(/\.\./g, "::");
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const sampled = new Map();
profile.samples.forEach((id, i) => sampled.set(id, (sampled.get(id) || 0) + (profile.timeDeltas[i] || 0)));
const self = new Map();
const kinds = { wasm: 0, "mock host (JS)": 0, other: 0 };
let total = 0;
for (const [id, us] of sampled) {
  const f = byId.get(id).callFrame;
  const wasmFn = f.url.startsWith("wasm://");
  const kind = wasmFn ? "wasm" : f.url.endsWith("profile.mjs") ? "mock host (JS)" : "other";
  kinds[kind] += us;
  total += us;
  if (wasmFn) {
    const key = demangle(f.functionName);
    self.set(key, (self.get(key) || 0) + us);
  }
}
const share = (us) => ((elapsed * 1000 * us) / total / requests).toFixed(1);
console.log("\n| where | µs per request |\n|---|---:|");
for (const [k, v] of Object.entries(kinds)) console.log(`| ${k} | ${share(v)} |`);
console.log("\n| wasm function (self time) | µs per request |\n|---|---:|");
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`| ${k.replace(/\|/g, "\\|").slice(0, 120)} | ${share(v)} |`);
}

// Inclusive time of the portcullis functions (each sample counted once per function on its stack).
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
const inclusive = new Map();
for (const [id, us] of sampled) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const f = byId.get(at).callFrame;
    if (!f.url.startsWith("wasm://")) continue;
    const key = demangle(f.functionName);
    if (key.includes("portcullis::") && !seen.has(key)) {
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) || 0) + us);
    }
  }
}
console.log("\n| portcullis function (inclusive) | µs per request |\n|---|---:|");
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`| ${k.replace(/\|/g, "\\|").slice(0, 120)} | ${share(v)} |`);
}

// Run a wasm32-wasip1 program under Node's V8 (the engine Envoy embeds):
//   node --single-threaded wasi.mjs prog.wasm
// (--single-threaded: Node 20 can crash at exit while V8's background compiler threads still
// work on the module; the numbers are the same.)
import { readFile } from "node:fs/promises";
import process, { argv, env } from "node:process";
import { WASI } from "node:wasi";

const wasi = new WASI({ version: "preview1", args: argv.slice(2), env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(argv[2]));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);

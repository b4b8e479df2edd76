/**
 * The fuzz test (fuzz.test.ts: random bytes in every mode, with paging and
 * random page permissions) again with the WebAssembly block tier compiling
 * every block on its first execution: hostile code never makes a compiled
 * block escape run(). The environment is set before the suite's module is
 * loaded, since the CPU reads it when it is created.
 */
process.env.KUMO_X86_JIT = "eager";
process.env.KUMO_FUZZ_MEMORY = "wasm";
await import("./fuzz.test");

export {};

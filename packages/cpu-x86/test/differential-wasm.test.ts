/**
 * The differential oracle suite (differential.test.ts) again with the
 * WebAssembly block tier compiling every block on its first execution
 * (KUMO_X86_JIT=eager over memory with WebAssembly scratch): the generated
 * modules must agree with the host CPU exactly as the interpreter does,
 * fault for fault and flag for flag. The environment is set before the
 * suite's module is loaded, since the CPU reads it when it is created.
 */
process.env.KUMO_X86_JIT = "eager";
process.env.KUMO_DIFF_MEMORY = "wasm";
await import("./differential.test");

export {};

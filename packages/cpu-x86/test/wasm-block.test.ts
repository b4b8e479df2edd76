/**
 * The WebAssembly block tier (src/wasm-block.ts) on hand-written programs:
 * it compiles and runs blocks, agrees with the interpreter on registers,
 * flags and memory, and a fault in the middle of a block leaves EIP, the
 * registers, the flags and the retired count as the interpreter does.
 */
import { VcpuExitReason } from "@kumo/abi";
import { createGuestMemory } from "@kumo/mmu";
import { describe, expect, it } from "vitest";
import { BLOCK_CACHE_SIZE, BlockCache } from "../src/block";
import { createX86Cpu, X86_WASM_SCRATCH_BYTES, type X86Cpu } from "../src/index";
import { createFlatCpu } from "../src/test/index";
import { Descriptor, descriptorTables } from "./support/descriptor-tables";
import { loadFlatSegments } from "./support/flat-segments";
import { random } from "./support/host";
import { idtGate } from "./support/idt-gate";
import { assemble } from "./support/nasm";

const RAM = 4 << 20;

function cpuWith(
  code: number[],
  options: { wasm: boolean; threshold?: number; jit?: boolean },
): X86Cpu {
  const memory = options.wasm
    ? createGuestMemory({ ramSize: RAM, wasmScratch: X86_WASM_SCRATCH_BYTES })
    : createGuestMemory({ ramSize: RAM });
  memory.ram.u8.set(code, 0x1000);
  const cpu = createX86Cpu({ memory, jit: options.jit, jitThreshold: options.threshold ?? 1 });
  cpu.setFlatProtectedMode(0x1000, 0x80000);
  return cpu;
}

function run(cpu: X86Cpu, budget = 1_000_000): VcpuExitReason {
  for (;;) {
    const reason = cpu.run(budget);
    if (reason !== VcpuExitReason.Budget) return reason;
  }
}

function state(cpu: X86Cpu) {
  const s = cpu.saveState();
  return { ...s, fpu: undefined };
}

/**
 * Runs `code` to `hlt` with every block compiled to WebAssembly and with
 * the interpreter alone, and expects the same state from both.
 */
function haltBoth(code: Uint8Array): { wasm: X86Cpu; interpreted: X86Cpu } {
  const wasm = createFlatCpu(code, { wasm: true, jitThreshold: 1 });
  const interpreted = createFlatCpu(code, { jit: false });
  expect(run(wasm)).toBe(VcpuExitReason.Halt);
  expect(run(interpreted)).toBe(VcpuExitReason.Halt);
  expect(state(wasm)).toEqual(state(interpreted));
  return { wasm, interpreted };
}

/** Turns paging on with the page directory at 0x10000 (see `identityMap`). */
const PAGING_ON = `  mov eax, 0x10000
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80000000
  mov cr0, eax`;

/**
 * Writes the page directory at 0x10000 with PDE 0 pointing to a page
 * table at 0x11000 that maps the first 128 KiB to themselves; returns a
 * view of RAM for more entries.
 */
function identityMap(cpu: X86Cpu): DataView {
  const view = new DataView(cpu.ram.buffer, cpu.ram.byteOffset);
  view.setUint32(0x10000, 0x11003, true);
  for (let page = 0; page < 0x20; page++)
    view.setUint32(0x11000 + 4 * page, (page << 12) | 3, true);
  return view;
}

/** The address of `label` in `program` as `assemble` places it. */
function labelAddress(program: string, label: string): number {
  const listing = assemble(`${program}\nlabel_at: dd ${label}`);
  return new DataView(listing.buffer).getUint32(listing.length - 4, true);
}

/** The first index where two byte arrays differ, or -1 (RAM-sized arrays: no deep equality). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * The prologue of the fault tests: flat segments, a #GP handler, and FS
 * a 64 KiB byte-granular data segment (selector 0x18), so that the block's
 * FS accesses are checked inline and past the limit raise #GP(0) (SDM vol.
 * 3A 5.3); EAX = 2.
 */
const FS_LIMITED = `${loadFlatSegments({ label: "reload" })}
${idtGate(13, "gp_handler", "0x8e00")}
  lidt [idt_ptr]
  mov ax, 0x18
  mov fs, ax
  mov eax, 2`;

describe("WebAssembly block tier", () => {
  it("is active over memory with WebAssembly scratch, and only there", () => {
    expect(cpuWith([0xf4], { wasm: true }).wasmTier).not.toBeNull();
    expect(cpuWith([0xf4], { wasm: false }).wasmTier).toBeNull();
  });

  it("leaves blocks to the interpreter when the host refuses to compile them", () => {
    // The same loop as below; WebAssembly.Module throws as a host out of
    // code space would (no real host here runs out on demand).
    const code = [
      0xb9, 0xe8, 0x03, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0xa3, 0, 0x20, 0, 0, 0x49, 0x75, 0xf6, 0xf4,
    ];
    const cpu = cpuWith(code, { wasm: true });
    const original = WebAssembly.Module;
    WebAssembly.Module = function refuse(): never {
      throw new RangeError("WebAssembly.Module(): out of memory");
    } as unknown as typeof WebAssembly.Module;
    try {
      expect(run(cpu)).toBe(VcpuExitReason.Halt);
    } finally {
      WebAssembly.Module = original;
    }
    expect(cpu.regs[0]).toBe(500500);
    expect(cpu.wasmTier?.failures).toBeGreaterThan(0);
    expect(cpu.counters.blockInstructions).toBe(0);
  });

  it("runs a loop block's inline memory accesses, slow paths included, as the interpreter", () => {
    // A loop block (its accesses inline): a dword read and a word store
    // across page boundaries (the slow paths), a read-modify-write, byte
    // and word stores; compared with the interpreter.
    const code = assemble(`
  mov ecx, 300
  mov esi, 0x2ffe
  xor eax, eax
l:
  add eax, [esi]
  add [0x4000], ecx
  mov [0x4010 + ecx], al
  mov [0x4400 + ecx * 2], cx
  mov [0x4fff], cx
  dec ecx
  jnz l
  hlt`);
    const wasm = cpuWith([...code], { wasm: true, threshold: 3 });
    const memory = createGuestMemory({ ramSize: RAM });
    memory.ram.u8.set(code, 0x1000);
    const interpreter = createX86Cpu({ memory, jit: false });
    interpreter.setFlatProtectedMode(0x1000, 0x80000);
    for (const cpu of [wasm, interpreter]) {
      cpu.ram.set([1, 2, 3, 4, 5, 6, 7, 8], 0x2ffc);
      // Short slices: queued blocks are compiled at the next run().
      expect(run(cpu, 50)).toBe(VcpuExitReason.Halt);
    }
    expect(state(wasm)).toEqual(state(interpreter));
    expect(firstDifference(wasm.ram, interpreter.ram)).toBe(-1);
    expect(wasm.counters.blockInstructions).toBeGreaterThan(0);
  });

  it("runs a loop as the interpreter does", () => {
    // mov ecx, 1000; xor eax, eax; l: add eax, ecx; mov [0x2000], eax; dec ecx; jnz l; hlt
    const code = [
      0xb9, 0xe8, 0x03, 0, 0, 0x31, 0xc0, 0x01, 0xc8, 0xa3, 0, 0x20, 0, 0, 0x49, 0x75, 0xf6, 0xf4,
    ];
    const wasm = cpuWith(code, { wasm: true });
    const js = cpuWith(code, { wasm: false });
    expect(run(wasm)).toBe(VcpuExitReason.Halt);
    expect(run(js)).toBe(VcpuExitReason.Halt);
    expect(wasm.regs[0]).toBe(500500);
    expect(state(wasm)).toEqual(state(js));
    expect(wasm.wasmTier?.compiled).toBeGreaterThan(0);
    expect(wasm.counters.blockInstructions).toBeGreaterThan(3000);
  });

  it("evaluates every condition after 8-, 16- and 32-bit ALU results inside a block as the interpreter", () => {
    // Each case: operands from a table, one flag-setting instruction, then
    // all sixteen SETcc into registers and out to memory, and a Jcc of
    // each condition (a side exit) in the same block. Compared with the
    // interpreter (jit: false): registers, EFLAGS and the output.
    const producers = [
      "cmp al, bl",
      "test al, bl",
      "sub al, bl",
      "add al, bl",
      "and al, 0x81",
      "or al, bl",
      "xor al, bl",
      "cmp al, 0x80",
      "test al, 0x80",
      "cmp ax, bx",
      "test ax, bx",
      "cmp ax, 0x8000",
      "cmp bx, ax",
      "cmp eax, ebx",
      "add eax, ebx",
      "test eax, ebx",
      "inc eax",
      "dec eax",
      "shl eax, 3",
      "imul eax, eax, 3",
      // ADC and SBB after each kind of flag record (their carry in), and
      // chained (the record they leave carries its own carry in).
      "add eax, ebx\n  adc eax, ebx",
      "cmp eax, ebx\n  sbb eax, ebx",
      "add eax, ebx\n  adc eax, 5",
      "sub eax, ebx\n  sbb ebx, 0x12345",
      "add eax, ebx\n  adc eax, ebx\n  adc ebx, eax",
      "sub eax, ebx\n  sbb eax, ebx\n  sbb ebx, eax",
      "shl eax, 3\n  adc eax, ebx",
      "inc eax\n  sbb eax, ebx",
      "test eax, ebx\n  adc eax, ebx",
      "stc\n  adc eax, ebx",
      "cmp eax, ebx\n  mov [esi + 1000], ebx\n  adc [esi + 1000], eax",
      "cmp ebx, eax\n  sbb eax, [edi + 4]",
      "imul eax, ebx",
      "imul ebx, [edi]",
      "mul ebx",
      "imul ebx",
      "mul dword [edi + 4]",
      "imul dword [edi]\n  add eax, edx",
      "mov al, 0x80\n  mov bh, 3\n  add al, bh",
      "mov ah, 0xff\n  mov cl, 1\n  add ah, cl",
      // INC/DEC r/m8: CF kept, the rest from the 8-bit result.
      "inc al",
      "dec bh",
      "mov al, 0xff\n  inc al",
      "mov bl, 0x80\n  dec bl",
      "cmp eax, ebx\n  inc byte [esi + 1000]",
      "cmp ebx, eax\n  dec ah\n  adc eax, 0",
      // BT BTS BTR BTC: CF replaced over each kind of record, the rest kept.
      "add eax, ebx\n  bt eax, 3",
      "cmp eax, ebx\n  bts ebx, 31",
      "inc eax\n  btr eax, ebx",
      "shl eax, 3\n  btc eax, 5",
      "add eax, ebx\n  rol eax, 3\n  bt eax, ebx",
      "sub eax, ebx\n  bt dword [edi], 7",
      "cmp eax, ebx\n  and ebx, 63\n  bts dword [esi + 1000], ebx",
      "cmp ebx, eax\n  or ebx, -64\n  bt dword [esi + 1008], ebx",
      "dec eax\n  btr dword [esi + 1000], 9\n  adc eax, 0",
    ];
    const conditions = "o no b ae e ne be a s ns p np l ge le g".split(" ");
    const lines = ["  mov esi, 0x40000", "  mov edi, 0x30000", "  mov ebp, 64", "next:"];
    producers.forEach((producer, p) => {
      for (const [k, cc] of conditions.entries()) {
        lines.push("  mov eax, [edi]", "  mov ebx, [edi + 4]", `  ${producer}`);
        lines.push(`  set${cc} dl`, `  mov [esi + ${p * 32 + k}], dl`);
        lines.push(`  j${cc} .t${p}_${k}`, `  or byte [esi + ${p * 32 + 16 + k}], 2`);
        lines.push(`.t${p}_${k}:`, `  or byte [esi + ${p * 32 + 16 + k}], 1`);
      }
    });
    lines.push("  add edi, 8", "  add esi, 1024", "  dec ebp", "  jnz next", "  hlt");
    const code = assemble(lines.join("\n"));
    const next = random(7);
    const values = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, -1];
    const fill = (cpu: X86Cpu) => {
      const table = new DataView(cpu.ram.buffer, 0x30000, 64 * 8);
      const pick = (i: number) => (i % 3 === 0 ? next() : values[next() % values.length]);
      for (let i = 0; i < 128; i++) table.setUint32(i * 4, pick(i) >>> 0, true);
    };
    const wasm = createFlatCpu(code, { wasm: true, jitThreshold: 1 });
    const interpreted = createFlatCpu(code, { jit: false });
    fill(wasm);
    interpreted.ram.set(wasm.ram.subarray(0x30000, 0x30000 + 512), 0x30000);
    expect(run(wasm)).toBe(VcpuExitReason.Halt);
    expect(run(interpreted)).toBe(VcpuExitReason.Halt);
    expect(state(wasm)).toEqual(state(interpreted));
    expect(wasm.ram.subarray(0x40000, 0x40000 + 64 * 1024)).toEqual(
      interpreted.ram.subarray(0x40000, 0x40000 + 64 * 1024),
    );
    expect(wasm.counters.blockInstructions).toBeGreaterThan(wasm.instructionsRetired / 2);
  });

  it("leaves EIP, registers, flags and the retired count as the interpreter when an access faults mid-block", () => {
    // FS: a 64 KiB byte-granular data segment, so its accesses are checked
    // inline (the tier's segment-check helper raises #GP(0) past the limit,
    // SDM vol. 3A 5.3). The block runs three instructions, then faults.
    const program = `
${FS_LIMITED}
  xor esi, esi
  jmp block
block:
  inc esi
  add eax, 5
  cmp eax, 7
faulting:
  mov ebx, [fs:0x20000]
  mov ecx, 1
  hlt
gp_handler:
  hlt
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData, "0x004092000000ffff"])}`;
    const code = assemble(program);
    const faulting = labelAddress(program, "faulting");
    const { wasm } = haltBoth(code);
    const esp = wasm.regs[4];
    const view = new DataView(wasm.ram.buffer);
    expect(view.getUint32(esp, true)).toBe(0); // #GP error code
    expect(view.getUint32(esp + 4, true)).toBe(faulting); // EIP of the faulting mov
    expect(view.getUint32(esp + 12, true) & 0x40).toBe(0x40); // ZF of cmp eax, 7 (a pending record)
    expect(wasm.regs[6]).toBe(1);
    expect(wasm.regs[1]).not.toBe(1);
    expect(wasm.wasmTier?.compiled).toBeGreaterThan(0);
    expect(wasm.counters.blockInstructions).toBeGreaterThanOrEqual(3);
  });

  describe("blocks continued through forward jmp/call in the page", () => {
    /**
     * Runs `code` under the tier (threshold 1) and the interpreter in
     * slices of random budgets (1-40: blocks longer than a slice's rest are
     * refused and the interpreter steps instead), comparing the exit, the
     * retired count and the state after every slice, then the memory.
     */
    function lockstep(code: Uint8Array, seed: number): X86Cpu {
      const wasm = createFlatCpu(code, { wasm: true, jitThreshold: 1 });
      const interpreted = createFlatCpu(code, { jit: false });
      const next = random(seed);
      for (let slice = 0; slice < 200_000; slice++) {
        const budget = 1 + (next() % 40);
        const reason = wasm.run(budget);
        expect(interpreted.run(budget)).toBe(reason);
        expect(wasm.instructionsRetired).toBe(interpreted.instructionsRetired);
        expect(state(wasm)).toEqual(state(interpreted));
        if (reason !== VcpuExitReason.Budget) break;
      }
      expect(firstDifference(wasm.ram, interpreted.ram)).toBe(-1);
      return wasm;
    }

    // A loop whose path crosses a forward jmp, a Jcc side exit (taken when
    // ecx & 3 < 2) and a forward call continued into its callee.
    const loop = `
  mov ecx, 300
  mov esi, 0x40000
  xor edx, edx
top:
  mov eax, ecx
  and eax, 3
  jmp .a
  ud2
.a:
  cmp eax, 2
  jb .small
  add edx, eax
  call f
  jmp .join
.small:
  sub edx, 1
.join:
  dec ecx
  jnz top
  hlt
f:
  mov [esi], edx
  add esi, 4
  ret`;

    it("take and fall through side exits as the interpreter, with fewer block runs", () => {
      const code = assemble(loop);
      const { wasm, interpreted } = haltBoth(code);
      expect(firstDifference(wasm.ram, interpreted.ram)).toBe(-1);
      // Two block runs per iteration through the call (top..ret, then
      // jmp .join..jnz), where ending at every jmp/call takes five.
      expect(wasm.counters.blockRuns).toBeLessThan(3 * 300);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(wasm.instructionsRetired * 0.9);
    });

    it("retire exactly the budget in every slice (lockstep with the interpreter)", () => {
      const wasm = lockstep(assemble(loop), 5);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(0);
    });

    it("leave EIP, registers, flags and the count as the interpreter on a fault after a jmp and a side exit's fall-through", () => {
      const program = `
${FS_LIMITED}
  xor esi, esi
  jmp block
block:
  inc esi
  jmp after_ud2
  ud2
after_ud2:
  add eax, 5
  cmp eax, 7
  jne out
faulting:
  mov ebx, [fs:0x20000]
  mov ecx, 1
out:
  hlt
gp_handler:
  hlt
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData, "0x004092000000ffff"])}`;
      const code = assemble(program);
      const faulting = labelAddress(program, "faulting");
      const { wasm } = haltBoth(code);
      const esp = wasm.regs[4];
      const view = new DataView(wasm.ram.buffer);
      expect(view.getUint32(esp + 4, true)).toBe(faulting);
      expect(view.getUint32(esp + 12, true) & 0x40).toBe(0x40); // ZF of cmp eax, 7
      expect(wasm.regs[6]).toBe(1);
      expect(wasm.counters.blockInstructions).toBeGreaterThanOrEqual(5);
    });

    it("take forward branches inside the block (nested, and past the block's end) as the interpreter", () => {
      // if/else shapes the tier keeps in one block: a Jcc to a later
      // instruction of the block leaves a wasm \`block\` ending there, the
      // skipped instructions do not count, and the flag records of the two
      // paths meet (adc and setcc read them after the join).
      const code = assemble(`
  mov ecx, 300
  xor edi, edi
  xor esi, esi
top:
  mov eax, ecx
  and eax, 7
  cmp eax, 3
  jb .small               ; nested in .odd's skip
  test ecx, 1
  jz .even
  add edi, 3
  cmp eax, 5
  jae .big
  sub esi, 1
.big:
  inc edi
.even:
  adc esi, 0
.small:
  sete bl
  add esi, ebx
  cmp eax, 6
  je .far                 ; past the block's end (its ret)
  add edi, eax
  call f
  jmp .next
.far:
  xor edi, 0x55
.next:
  dec ecx
  jnz top
  hlt
f:
  ret`);
      const wasm = lockstep(code, 17);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(wasm.instructionsRetired / 2);
    });

    it("hold both arms of an if/else and the code after an early return in one block, as the interpreter", () => {
      // After a transfer (ret, jmp) decoding goes on at the nearest forward
      // target: f is one block with its three returns; the jmp over the
      // dead mov is a skip too.
      const code = assemble(`
  mov ecx, 300
  xor edi, edi
top:
  mov eax, ecx
  call f
  add edi, eax
  dec ecx
  jnz top
  hlt
f:
  test eax, 1
  jnz .odd
  shr eax, 1
  cmp eax, 10
  jb .small
  ret
.small:
  add eax, 100
  ret
.odd:
  lea eax, [eax * 2 + 1]
  jmp .join
  mov eax, -1
.join:
  xor eax, 0x5a
  ret`);
      const wasm = lockstep(code, 23);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(wasm.instructionsRetired / 2);
      // f and the loop: far fewer block runs than one per side exit.
      // In one long run, two block runs per iteration: the loop's block
      // with f continued into it up to its return (whichever arm), then
      // the rest of the loop; a side exit per arm measured 759.
      const whole = createFlatCpu(code, { wasm: true, jitThreshold: 1 });
      expect(run(whole)).toBe(VcpuExitReason.Halt);
      expect(whole.counters.blockRuns).toBeLessThanOrEqual(2 * 300 + 2);
    });

    it("run random forward-branching programs as the interpreter (lockstep, random budgets)", () => {
      // Random regions: ALU forms that set flags, forward Jcc and jmp to
      // labels ahead (nesting and crossing), early returns from a called
      // function, memory reads and writes; all inside a counted loop.
      for (let seed = 1; seed <= 6; seed++) {
        const next = random(seed * 7919);
        const pick = <T>(list: T[]): T => list[next() % list.length];
        const regs = ["eax", "ebx", "edx", "esi", "edi"];
        const conditions = [
          "z",
          "nz",
          "c",
          "nc",
          "s",
          "ns",
          "o",
          "no",
          "a",
          "be",
          "l",
          "ge",
          "g",
          "le",
          "p",
          "np",
        ];
        const body = (prefix: string, count: number, returns: boolean): string[] => {
          const lines: string[] = [];
          for (let i = 0; i < count; i++) {
            lines.push(`${prefix}${i}:`);
            const later = `${prefix}${i + 1 + (next() % Math.max(1, count - i))}`;
            switch (next() % 9) {
              case 0:
                lines.push(`  j${pick(conditions)} ${later}`);
                break;
              case 1:
                lines.push(`  jmp ${later}`);
                break;
              case 2:
                lines.push(
                  returns
                    ? `  j${pick(conditions)} ${prefix}ret`
                    : `  j${pick(conditions)} ${later}`,
                );
                break;
              case 3:
                lines.push(`  mov ${pick(regs)}, [0x20000 + ${4 * (next() % 64)}]`);
                break;
              case 4:
                lines.push(`  add [0x20000 + ${4 * (next() % 64)}], ${pick(regs)}`);
                break;
              case 5:
                lines.push(`  ${pick(["inc", "dec", "neg", "not"])} ${pick(regs)}`);
                break;
              case 6:
                lines.push(
                  `  ${pick(["adc", "sbb", "rol", "shr"])} ${pick(regs)}, ${1 + (next() % 7)}`,
                );
                break;
              default:
                lines.push(
                  `  ${pick(["add", "sub", "xor", "and", "or", "cmp", "test"])} ${pick(regs)}, ${pick(regs)}`,
                );
            }
          }
          lines.push(`${prefix}${count}:`);
          if (returns) lines.push(`${prefix}ret:`, "  ret");
          return lines;
        };
        const code = assemble(
          [
            "  mov esp, 0x30000",
            "  mov ecx, 60",
            "top:",
            "  push ecx",
            "  mov eax, ecx",
            "  imul ebx, ecx, 0x9e3779b1",
            ...body("la", 24, false),
            "  call f",
            ...body("lb", 12, false),
            "  pop ecx",
            "  dec ecx",
            "  jnz top",
            "  hlt",
            "f:",
            ...body("lf", 16, true),
          ].join("\n"),
        );
        const wasm = lockstep(code, seed);
        expect(wasm.counters.blockInstructions).toBeGreaterThan(0);
      }
    });

    it("leave EIP and the count as the interpreter on a fault after a forward branch taken inside the block", () => {
      const program = `
${FS_LIMITED}
  jmp block
block:
  cmp eax, 2
  je skip
  mov ecx, 7
  mov edx, 8
skip:
  add eax, 5
faulting:
  mov ebx, [fs:0x20000]
  hlt
gp_handler:
  hlt
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData, "0x004092000000ffff"])}`;
      const code = assemble(program);
      const { wasm, interpreted } = haltBoth(code);
      expect(wasm.instructionsRetired).toBe(interpreted.instructionsRetired);
      expect(wasm.regs[1]).toBe(0); // the skipped mov ecx, 7
    });

    it("run mov eax/moffs32, inc/dec m32 and push m32 inline as the interpreter", () => {
      // INC/DEC keep CF (adc reads it), wrap at 0x7fffffff/0 (OF, ZF, SF
      // read by Jcc and SETcc); push [esp + 4] reads ESP before the push.
      const code = assemble(`
  mov ecx, 200
  mov dword [0x20000], 0x7ffffff0
  mov dword [0x20004], 8
  xor edi, edi
top:
  stc
  inc dword [0x20000]
  adc edi, 0
  seto bl
  add edi, ebx
  dec dword [0x20004]
  jnz .nz
  mov dword [0x20004], 5
.nz:
  sets bl
  add edi, ebx
  mov eax, [0x20000]
  add eax, ecx
  mov [0x20008], eax
  push dword [0x20004]
  push dword [esp]
  pop eax
  pop edx
  add edi, eax
  dec ecx
  jnz top
  hlt`);
      const wasm = lockstep(code, 13);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(wasm.instructionsRetired / 2);
    });

    it("run call and jmp through registers and memory inline as the interpreter", () => {
      // A dispatch loop: call [table + 4*i], call reg, jmp [table], jmp
      // reg; the callees return with ret and change EDI differently.
      const code = assemble(`
  mov dword [0x20000], f0
  mov dword [0x20004], f1
  mov dword [0x20008], f2
  mov dword [0x2000c], back
  mov ecx, 300
  xor edi, edi
top:
  mov eax, ecx
  and eax, 3
  cmp eax, 3
  je via_reg
  call [0x20000 + eax*4]
  jmp next_round
via_reg:
  mov edx, f1
  call edx
  mov ebx, [0x2000c]
  test ecx, 4
  jz via_mem
  jmp ebx
via_mem:
  jmp [0x2000c]
back:
  add edi, 7
next_round:
  dec ecx
  jnz top
  hlt
f0:
  add edi, 1
  ret
f1:
  imul edi, edi, 3
  ret
f2:
  xor edi, ecx
  ret`);
      const wasm = lockstep(code, 17);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(wasm.instructionsRetired / 2);
      expect(haltBoth(code).wasm.regs[7]).toBe(wasm.regs[7]);
    });

    it("refuse a block compiled for a flat DS once DS has another base, as the interpreter reads", () => {
      // The loop's block assumes DS flat (base 0, no checks: the WASM_FLAT
      // word); halfway DS gets base 0x1000, and the same block entered
      // again must not read [ebx] at linear 0x20000 any more. The
      // descriptor is marked accessed already: setting the bit would write
      // the GDT, in the code's page, and drop the blocks.
      const code = assemble(`
${loadFlatSegments({ label: "reload" })}
  mov dword [0x20000], 5
  mov dword [0x21000], 9
  mov ecx, 50
  xor edi, edi
top:
  mov ebx, 0x20000
  add edi, [ebx]
  cmp ecx, 25
  jne skip
  mov ax, 0x18
  mov ds, ax
skip:
  dec ecx
  jnz top
  hlt
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData, "0x00cf93001000ffff"])}`);
      const { wasm } = haltBoth(code);
      expect(wasm.regs[7]).toBe(26 * 5 + 24 * 9);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(100);
    });

    it("leave the state as the interpreter when inc, push, bt, bts, call and jmp on m32 fault (#GP past a segment limit)", () => {
      for (const faulting of [
        "inc dword [fs:0x20000]",
        "push dword [fs:0x20000]",
        "bt dword [fs:0x20000], 3",
        "mov ecx, 0x200000\n  bts dword [fs:0x100], ecx",
        "call [fs:0x20000]",
        "jmp [fs:0x20000]",
        "call [fs:0xfffe]",
      ]) {
        const code = assemble(`
${FS_LIMITED}
  mov dword [fs:0xfffc], target
  jmp block
block:
  inc dword [fs:0x100]
  push dword [fs:0x104]
  add eax, 5
  cmp eax, 7
  ${faulting}
  mov ecx, 1
  hlt
target:
  mov edx, 3
  hlt
gp_handler:
  hlt
${descriptorTables([Descriptor.kernelCode, Descriptor.kernelData, "0x004092000000ffff"])}`);
        const { wasm, interpreted } = haltBoth(code);
        expect(firstDifference(wasm.ram, interpreted.ram)).toBe(-1);
        expect(interpreted.regs[2]).not.toBe(3);
        expect(wasm.counters.blockInstructions).toBeGreaterThanOrEqual(4);
      }
    });

    it("leave at the callee when a continued call's push writes the block's own code page", () => {
      // The stack sits in the code's page: every push invalidates the
      // page's blocks, and the block leaves after the call with EIP = f.
      const code = assemble(`
  mov esp, stack_top
  mov ecx, 50
  xor eax, eax
l:
  call f
  dec ecx
  jnz l
  hlt
f:
  add eax, ecx
  ret
  align 16
  times 64 db 0
stack_top:`);
      const wasm = lockstep(code, 9);
      expect(wasm.regs[0]).toBe((50 * 51) / 2);
      expect(wasm.counters.codePageWrites).toBeGreaterThan(0);
    });
  });

  describe("when blocks are compiled", () => {
    /** The share of the retired instructions that ran in blocks. */
    const blockShare = (cpu: X86Cpu) => cpu.counters.blockInstructions / cpu.instructionsRetired;

    it("compiles a loop that turns hot within one run, before the run ends", () => {
      // One block, far from a full batch: it is compiled when its start
      // comes back after the threshold, not at the next run().
      const code = assemble(`
  mov ecx, 20000
  xor eax, eax
l:
  add eax, ecx
  dec ecx
  jnz l
  hlt`);
      const wasm = cpuWith([...code], { wasm: true, threshold: 100 });
      expect(wasm.run(10_000_000)).toBe(VcpuExitReason.Halt);
      expect(wasm.regs[0]).toBe((20000 * 20001) / 2);
      expect(blockShare(wasm)).toBeGreaterThan(0.95);
    });

    it("compiles straight-line code longer than a block with its first block", () => {
      // A loop whose body is 240 instructions without a branch (as an
      // unrolled cipher round): five blocks of MAX_BLOCK, compiled as one
      // chain once the first is hot, not each after its own threshold.
      const body = Array.from({ length: 80 }, (_, i) =>
        ["add eax, ebx", `rol eax, ${(i % 31) + 1}`, "xor ebx, eax"].join("\n"),
      ).join("\n");
      const program = `
  mov ecx, 1000
  mov eax, 1
  mov ebx, 2
l:
${body}
  dec ecx
  jnz l
  hlt`;
      const wasm = cpuWith([...assemble(program)], { wasm: true, threshold: 50 });
      const interpreter = cpuWith([...assemble(program)], { wasm: false });
      expect(run(wasm)).toBe(VcpuExitReason.Halt);
      expect(run(interpreter)).toBe(VcpuExitReason.Halt);
      expect(state(wasm)).toEqual(state(interpreter));
      // Counted one at a time, the fifth block would start at about
      // iteration 5 * 50 + 32: below 0.8 of the run.
      expect(blockShare(wasm)).toBeGreaterThan(0.9);
    });

    /** The offset of `mov eax, 1` (b8 01 00 00 00) in `code`. */
    const movEax1 = (code: Uint8Array) =>
      code.findIndex((byte, i) => byte === 0xb8 && code[i + 1] === 1 && code[i + 2] === 0);

    /** Adds `mov eax, 1`'s constant to EBX 1000 times (the host rewrites the constant). */
    const sumOfOnes = () =>
      assemble(`
  mov ecx, 1000
  xor ebx, ebx
l:
  mov eax, 1
  add ebx, eax
  dec ecx
  jnz l
  hlt`);

    it("runs code the host rewrote between runs, unannounced", () => {
      // Host code (a backend, a grant copy) writes RAM without telling the
      // CPU: each run begins a new code epoch, so the first entry into a
      // block of the page compares the page's code with what its blocks
      // were generated from, and drops them when it changed.
      const code = sumOfOnes();
      const wasm = cpuWith([...code], { wasm: true, threshold: 10 });
      expect(run(wasm)).toBe(VcpuExitReason.Halt);
      expect(wasm.regs[3]).toBe(1000);
      expect(wasm.counters.blockInstructions).toBeGreaterThan(2000);
      wasm.ram[0x1000 + movEax1(code) + 1] = 2;
      wasm.setFlatProtectedMode(0x1000, 0x80000);
      expect(run(wasm)).toBe(VcpuExitReason.Halt);
      expect(wasm.regs[3]).toBe(2000);
    });

    it("never registers a block whose page the guest wrote while it waited in the queue", () => {
      // The loop at l is queued after 10 passes; before its batch is
      // compiled (32 more entries) the guest rewrites the loop's constant.
      // The loop at m, in the same page, is queued next (its page checked
      // again) and compiles the batch: the queued block of l, made from the
      // old bytes, must not be registered with it.
      const code = assemble(`
  mov esi, 20
  xor ebx, ebx
  mov ecx, esi
l:
  mov eax, 1
  add ebx, eax
  dec ecx
  jnz l
  test esi, esi
  jz done
  mov byte [l + 1], 2
  xor esi, esi
  mov edx, 100
m:
  dec edx
  jnz m
  mov ecx, 1000
  jmp l
done:
  hlt`);
      const wasm = cpuWith([...code], { wasm: true, threshold: 10 });
      expect(run(wasm)).toBe(VcpuExitReason.Halt);
      expect(wasm.regs[3]).toBe(20 + 2 * 1000);
      expect(blockShare(wasm)).toBeGreaterThan(0.5);
    });

    it("runs code a device rewrote during a run, at its port access", () => {
      // Host code called in the middle of a run (a port write here, as a
      // device starting DMA would) may rewrite code: the blocks compare
      // their code bytes again after it.
      const code = assemble(`
  mov ecx, 2000
  xor ebx, ebx
l:
  mov eax, 1          ; the device makes it mov eax, 2
  add ebx, eax
  cmp ecx, 1000
  jne skip
  out 0x80, al
skip:
  dec ecx
  jnz l
  hlt`);
      const results = [true, false].map((wasm) => {
        const memory = wasm
          ? createGuestMemory({ ramSize: RAM, wasmScratch: X86_WASM_SCRATCH_BYTES })
          : createGuestMemory({ ramSize: RAM });
        memory.ram.u8.set(code, 0x1000);
        const io = {
          portRead: () => 0,
          portWrite: () => {
            memory.ram.u8[0x1000 + movEax1(code) + 1] = 2;
          },
        };
        const cpu = createX86Cpu({ memory, io, jitThreshold: 10, jit: wasm });
        cpu.setFlatProtectedMode(0x1000, 0x80000);
        expect(cpu.run(10_000_000)).toBe(VcpuExitReason.Halt);
        if (wasm) expect(blockShare(cpu)).toBeGreaterThan(0.5);
        return cpu.regs[3];
      });
      // 1001 passes add 1 (the last one before the write), 999 add 2.
      expect(results).toEqual([2999, 2999]);
    });

    it("runs code whose bytes a page walk's accessed bit changed, as the interpreter", () => {
      // The page table at 0x11000 is also a code page: the immediate of
      // the loop's first instruction is the PTE of linear 0x200000, so the
      // loop's first read there sets its accessed bit (0x5003 -> 0x5023).
      const start = assemble(`${PAGING_ON}
  mov ecx, 3
  xor esi, esi
  jmp 0x117ff`);
      const loop = [
        ...[0xb8, 0x03, 0x50, 0x00, 0x00], // mov eax, 0x5003 (its imm32 is PTE 512)
        ...[0x01, 0xc6], // add esi, eax
        ...[0x8b, 0x1d, 0x00, 0x00, 0x20, 0x00], // mov ebx, [0x200000]
        0x49, // dec ecx
        ...[0x75, 0xf0], // jnz 0x117ff
        0xf4, // hlt
      ];
      // The WebAssembly tier, the JavaScript tier, the interpreter alone.
      const results = [true, false, false].map((wasm, i) => {
        const cpu = cpuWith([...start], { wasm, jit: i < 2 });
        identityMap(cpu);
        cpu.ram.set(loop, 0x117ff);
        expect(run(cpu)).toBe(VcpuExitReason.Halt);
        return cpu.regs[6];
      });
      expect(results).toEqual(new Array(3).fill(0x5003 + 2 * 0x5023));
    });

    it("chains between blocks in two linear pages mapped to other physical pages, as the interpreter", () => {
      // Linear 0x400000 maps to physical 0x9000 and 0x401000 to 0x8000. A
      // block at each page's offset 0x100 jumps to the other's: the
      // dispatcher translates each target's own page (a translation it
      // kept from the other page would find the first block again, at
      // 0x9100, which has a block).
      const start = assemble(`${PAGING_ON}
  mov ecx, 1000
  xor eax, eax
  xor ebx, ebx
  jmp 0x400100`);
      const first = [
        ...[0x83, 0xc0, 0x01], // add eax, 1
        ...[0xe9, 0xf8, 0x0f, 0x00, 0x00], // jmp 0x401100
      ];
      const second = [
        ...[0x83, 0xc3, 0x01], // add ebx, 1
        0x49, // dec ecx
        ...[0x0f, 0x85, 0xf6, 0xef, 0xff, 0xff], // jnz 0x400100
        0xf4, // hlt
      ];
      const results = [true, false].map((wasm) => {
        const cpu = cpuWith([...start], { wasm, jit: wasm });
        const view = identityMap(cpu);
        view.setUint32(0x10004, 0x12003, true); // PDE 1: linear 0x400000-0x7fffff
        view.setUint32(0x12000, 0x9003, true);
        view.setUint32(0x12004, 0x8003, true);
        cpu.ram.set(first, 0x9100);
        cpu.ram.set(second, 0x8100);
        expect(run(cpu)).toBe(VcpuExitReason.Halt);
        if (wasm) expect(blockShare(cpu)).toBeGreaterThan(0.5);
        return [cpu.regs[0], cpu.regs[3], cpu.regs[1], cpu.eip >>> 0];
      });
      expect(results[0]).toEqual([1000, 1000, 0, 0x40110b]);
      expect(results[1]).toEqual(results[0]);
    });

    it("hands out dense table indices and reuses those of dropped blocks", () => {
      const cache = new BlockCache(4096, 100);
      const block = () => 0;
      const page = 0x123;
      const slot = (page << 12) & (BLOCK_CACHE_SIZE - 1);
      const first = cache.claimIndex();
      cache.put(slot, page << 12, block, 5, first);
      const second = cache.claimIndex();
      cache.put(slot + 0x10, (page << 12) + 0x10, block, 200, second);
      expect([first, second]).toEqual([1, 2]);
      expect([cache.tag(slot + 0x10), cache.length(slot + 0x10)]).toEqual([
        (page << 12) + 0x10,
        200,
      ]);
      expect(cache.entries[((slot + 0x10) << 1) | 1] >>> 8).toBe(2);
      // Replacing a slot's block frees the old block's index.
      const third = cache.claimIndex();
      cache.put(slot, (page << 12) + BLOCK_CACHE_SIZE, block, 1, third);
      expect(third).toBe(3);
      expect(cache.claimIndex()).toBe(1);
      // A write to the page drops its blocks and frees their indices.
      cache.invalidatePage(page);
      expect(cache.tag(slot + 0x10)).not.toBe((page << 12) + 0x10);
      expect(cache.code[slot + 0x10]).toBeUndefined();
      expect(cache.claimIndex()).toBe(2);
      expect(cache.indexLimit).toBe(4);
      cache.clear();
      expect(cache.claimIndex()).toBe(1);
    });

    it("keeps the block table dense while code is rewritten", () => {
      // Each round rewrites the loop's constant (its blocks refuse and are
      // dropped) and runs it hot again: the table's indices are reused,
      // and its size does not grow with the rounds.
      const code = sumOfOnes();
      const wasm = cpuWith([...code], { wasm: true, threshold: 10 });
      const cache = (wasm as unknown as { blocks: BlockCache }).blocks;
      const limits: number[] = [];
      for (let round = 1; round <= 30; round++) {
        wasm.ram[0x1000 + movEax1(code) + 1] = round;
        wasm.setFlatProtectedMode(0x1000, 0x80000);
        expect(run(wasm)).toBe(VcpuExitReason.Halt);
        expect(wasm.regs[3]).toBe(1000 * round);
        limits.push(cache.indexLimit);
      }
      expect(cache.compiled).toBeGreaterThanOrEqual(30);
      // One index more than the live blocks at most: a block's replacement
      // claims its index before the old one's is freed.
      expect(Math.max(...limits)).toBeLessThanOrEqual(limits[0] + 1);
    });

    it("keeps the counts of other pages' addresses when a code page is written", () => {
      const cache = new BlockCache(4096, 100);
      const page = 0x123;
      // A page whose addresses share the slots of \`page\`.
      const alias = page + BLOCK_CACHE_SIZE / 4096;
      const slot = (page << 12) & (BLOCK_CACHE_SIZE - 1);
      cache.hotTag[slot + 0x40] = (page << 12) + 0x40;
      cache.hot[slot + 0x40] = 60;
      cache.invalidatePage(alias);
      expect(cache.hot[slot + 0x40]).toBe(60);
      cache.invalidatePage(page);
      expect(cache.hot[slot + 0x40]).toBe(0);
    });
  });
});

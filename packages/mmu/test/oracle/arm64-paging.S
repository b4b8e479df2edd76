// A bare-metal probe for the arm64 stage-1 oracle test (arm64-oracle.test.ts).
// QEMU's virt machine starts it at EL1; the scenarios sit at 0x48000000
// (generic loader). For each scenario the probe writes the scenario's
// descriptors with the MMU off, loads TCR_EL1/TTBR0/TTBR1 and SCTLR_EL1.WXN,
// turns the MMU on, performs one read, write or instruction fetch at EL1
// (optionally with PSTATE.PAN) or EL0, and reports on the UART what the CPU
// did: the marker of the frame reached, or ESR_EL1 and FAR_EL1 of the abort,
// and the descriptors afterwards (the access flag under TCR_EL1.HA).
//
// Scenario (little-endian words): tcr low, tcr high, sctlr extra bits,
// ttbr0, ttbr1, va low, va high, access (0 read, 1 write, 2 execute),
// flags (bit 0 EL0, bit 1 PAN), count, then count x (address, low, high).
// The blob starts with the number of scenarios.
// Report: index, status (0 done, 1 abort), value (x0 or ESR), far low,
// far high, written frame, count, then the low word of each written entry.
//
// Memory: probe code at 0x40100000 (the 2 MiB block at 0x40000000 is EL1
// read-only), EL0 stub at 0x40200000, EL0 stack block at 0x40400000, probe
// data at 0x40600000, hook tables at
// 0x43000000, scenario tables 0x44000000-0x440fffff, marked data frames
// 0x45000000-0x45ffffff: "movz w0, lo; movk w0, hi, lsl 16; ret" at +0,
// the frame address at +16, the write tag at +24.

        .equ UART, 0x09000000
        .equ SCENARIOS, 0x48000000
        .equ DATA, 0x45000000
        .equ DATA_END, 0x46000000
        .equ HOOK_L1, 0x43000000
        .equ HOOK_L2, 0x43001000

        .section .text
        .global _start
_start:
        msr daifset, #0xf
        ldr x0, =stack_top
        mov sp, x0
        ldr x0, =vectors
        msr vbar_el1, x0
        // MMU off, no alignment checks, no WXN; keep the rest.
        mrs x0, sctlr_el1
        bic x0, x0, #1
        bic x0, x0, #2
        bic x0, x0, #(1 << 19)
        msr sctlr_el1, x0
        isb
        ldr x0, =saved_sctlr
        mrs x1, sctlr_el1
        str x1, [x0]
        // Every MAIR slot Normal write-back, so any AttrIndx is ordinary memory.
        mov x0, #-1
        msr mair_el1, x0

        // Markers in every data frame.
        ldr x1, =DATA
        ldr x2, =DATA_END
1:      and w3, w1, #0xffff
        lsr w4, w1, #16
        ldr w5, =0x52800000             // movz w0, #lo
        orr w5, w5, w3, lsl #5
        str w5, [x1]
        ldr w5, =0x72a00000             // movk w0, #hi, lsl #16
        orr w5, w5, w4, lsl #5
        str w5, [x1, #4]
        ldr w5, =0xd65f03c0             // ret
        str w5, [x1, #8]
        str w1, [x1, #16]
        str wzr, [x1, #24]
        add x1, x1, #0x1000
        cmp x1, x2
        b.lo 1b
        ic iallu
        dsb sy
        isb

        // Hook tables: L1[1] -> L2, whose blocks map the probe's code (EL1
        // read-only, so that SCTLR_EL1.WXN leaves it executable), the EL0 stub
        // (read-only at both levels, executable), the EL0 stack and the
        // probe's data (execute-never).
        ldr x0, =HOOK_L1
        ldr x1, =(HOOK_L2 | 3)
        str x1, [x0, #8]
        ldr x0, =HOOK_L2
        ldr x1, =(0x40000000 | 1 | (1 << 10) | (2 << 6))
        str x1, [x0]
        ldr x1, =(0x40600000 | 1 | (1 << 10))
        mov x2, #(3 << 21)
        orr x1, x1, x2, lsl #32         // UXN | PXN
        str x1, [x0, #24]
        ldr x1, =(0x40200000 | 1 | (1 << 10) | (3 << 6))
        str x1, [x0, #8]
        ldr x1, =(0x40400000 | 1 | (1 << 10) | (1 << 6))
        mov x2, #(3 << 21)
        orr x1, x1, x2, lsl #32         // UXN | PXN
        str x1, [x0, #16]

        ldr x19, =SCENARIOS
        ldr w20, [x19], #4              // scenarios left
        mov w21, #0                     // index

next_scenario:
        cbz w20, finished
        sub w20, w20, #1
        add w21, w21, #1
        mov x22, x19                    // scenario header
        ldr w23, [x22, #36]             // count
        add x24, x22, #40               // entries
        mov x1, #12
        madd x19, x23, x1, x24          // next scenario

        // Write the descriptors.
        mov x1, x24
        mov w2, w23
2:      cbz w2, 3f
        ldr w3, [x1]
        ldr w4, [x1, #4]
        ldr w5, [x1, #8]
        str w4, [x3]
        str w5, [x3, #4]
        add x1, x1, #12
        sub w2, w2, #1
        b 2b
3:      dsb sy

        // System registers of the scenario.
        ldr w0, [x22]
        ldr w1, [x22, #4]
        orr x0, x0, x1, lsl #32
        msr tcr_el1, x0
        ldr w0, [x22, #12]
        msr ttbr0_el1, x0
        ldr w0, [x22, #16]
        msr ttbr1_el1, x0
        isb
        tlbi vmalle1
        dsb sy
        isb
        // Everything the access needs goes to registers and the probe's data
        // now: the scenario blob is not mapped once the MMU is on.
        ldr x0, =status
        str wzr, [x0]
        ldr x0, =value
        str wzr, [x0]
        ldr x0, =far
        str xzr, [x0]
        ldr w14, [x22, #28]             // access
        ldr w2, [x22, #20]
        ldr w3, [x22, #24]
        orr x15, x2, x3, lsl #32        // va
        ldr w16, [x22, #32]             // flags
        ldr x0, =saved_sctlr
        ldr x0, [x0]
        ldr w1, [x22, #8]
        orr x0, x0, x1
        orr x0, x0, #1
        msr sctlr_el1, x0
        isb

        mov w1, w14
        mov x2, x15
        mov w3, w21                     // tag
        mov w4, w16
        tbnz w4, #0, el0_access
        tbz w4, #1, 4f
        msr pan, #1
4:      cmp w1, #0
        b.eq 5f
        cmp w1, #1
        b.eq 6f
        blr x2
        b 7f
5:      ldr w0, [x2]
        b 7f
6:      str w3, [x2]
        mov w0, #0
7:      ldr x9, =value
        str w0, [x9]
        b resume

el0_access:
        ldr x0, =0x40401000
        msr sp_el0, x0
        ldr x0, =user_stub
        msr elr_el1, x0
        msr spsr_el1, xzr               // EL0t, interrupts unmasked (none come)
        eret

// Every way back from the access arrives here at EL1.
resume:
        ldr x0, =stack_top
        mov sp, x0
        msr pan, #0
        ldr x0, =saved_sctlr
        ldr x0, [x0]
        msr sctlr_el1, x0               // MMU off
        isb

        // Writes: find the frame that received the tag.
        mov w25, #-1
        ldr x1, =DATA
        ldr x2, =DATA_END
8:      ldr w3, [x1, #24]
        cmp w3, w21
        b.ne 9f
        mov w25, w1
        str wzr, [x1, #24]
9:      add x1, x1, #0x1000
        cmp x1, x2
        b.lo 8b

        mov w0, w21
        bl out_word
        ldr x0, =status
        ldr w0, [x0]
        bl out_word
        ldr x0, =value
        ldr w0, [x0]
        bl out_word
        ldr x0, =far
        ldr x26, [x0]
        mov w0, w26
        bl out_word
        lsr x0, x26, #32
        bl out_word
        mov w0, w25
        bl out_word
        mov w0, w23
        bl out_word
        // Entries after the access, then clear them.
        mov x27, x24
        mov w28, w23
10:     cbz w28, 11f
        ldr w3, [x27]
        ldr w0, [x3]
        bl out_word
        ldr w3, [x27]
        str wzr, [x3]
        str wzr, [x3, #4]
        add x27, x27, #12
        sub w28, w28, #1
        b 10b
11:     dsb sy
        b next_scenario

finished:
        ldr x0, =0x84000008             // PSCI SYSTEM_OFF
        hvc #0
        b finished

// w0 -> UART, little-endian
out_word:
        ldr x9, =UART
        mov w10, #4
12:     strb w0, [x9]
        lsr w0, w0, #8
        subs w10, w10, #1
        b.ne 12b
        ret

exception:
        mrs x9, esr_el1
        ubfx x11, x9, #26, #6
        cmp x11, #0x15                  // SVC from AArch64: the EL0 stub is done
        b.ne 13f
        ldr x12, =value
        str w0, [x12]
        b 14f
13:     ldr x12, =value
        str w9, [x12]
        mrs x10, far_el1
        ldr x12, =far
        str x10, [x12]
        mov w13, #1
        ldr x12, =status
        str w13, [x12]
14:     ldr x12, =resume
        msr elr_el1, x12
        mov x12, #0x3c5                 // EL1h, DAIF masked
        msr spsr_el1, x12
        eret

        .balign 2048
vectors:
        .rept 16
        b exception
        .balign 128
        .endr

        .ltorg

        .section .data
        .balign 8
saved_sctlr: .quad 0
far:    .quad 0
status: .word 0
value:  .word 0
        .balign 16
        .space 8192
stack_top:

        .section .user, "ax"
// EL0: x1 = access kind, x2 = address, w3 = tag.
user_stub:
        cmp w1, #0
        b.eq 1f
        cmp w1, #1
        b.eq 2f
        blr x2
        b 3f
1:      ldr w0, [x2]
        b 3f
2:      str w3, [x2]
        mov w0, #0
3:      svc #0

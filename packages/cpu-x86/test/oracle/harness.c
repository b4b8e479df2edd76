/*
 * The host side of Kumo's differential CPU oracle: a freestanding 32-bit
 * Linux program (gcc -m32 -nostdlib -static) that runs test cases on the
 * real processor (or under qemu-i386) and reports what the machine did.
 *
 * Input (stdin): a header, the 8 KiB initial data region, then fixed-size
 * cases (layout in layout.ts, which is the one source of these numbers).
 * Memory differences are reported against the initial region with the
 * case's patch applied.
 * For each case the harness restores the data region, writes the code bytes
 * into a page of `hlt`s, loads EFLAGS, the eight registers and the segment
 * registers of the case's mode, and far-jumps to the code in ring 3. The
 * run ends with the first exception: normally the `hlt` after the code,
 * which is privileged and raises #GP(0) (Intel SDM vol. 2A HLT), or a fault
 * of the instruction under test. The kernel reports it as a signal whose
 * sigcontext carries the vector (trapno), error code, EIP, EFLAGS, all
 * registers and CR2 (Linux arch/x86/include/uapi/asm/sigcontext.h,
 * struct sigcontext_32). The handler records them and resumes the harness.
 *
 * 16-bit code runs natively too: two LDT descriptors made with modify_ldt
 * (Linux arch/x86/kernel/ldt.c) give a 16-bit code segment and a 16-bit
 * data/stack segment with base DATA_BASE, so CS.D = SS.B = 0 as in real
 * mode. A 64-bit Linux restores 32-bit ESP through ESPFIX when it returns
 * to a 16-bit stack (interrupt during the case): only SP is meaningful then,
 * which the comparison knows.
 */

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#define DATA_BASE 0x00020000u
#define DATA_SIZE 0x2000u
#define CODE_BASE 0x00030000u
#define CODE_OFFSET 0x80u
#define CODE_MAX 64u

#define SEL_CODE16 0x07u /* LDT entry 0, RPL 3 */
#define SEL_DATA16 0x0fu /* LDT entry 1, RPL 3 */
#define SEL_CODE32 0x23u /* Linux __USER32_CS */
#define SEL_DATA32 0x2bu /* Linux __USER_DS */

#define MAGIC 0x43524f4bu /* "KORC" */
#define CASE_SIZE 128u
#define PATCH_MAX 20u
#define RESULT_SIZE 256u
#define MAX_DIFFS 40u

/* One case: registers in ModRM order EAX ECX EDX EBX ESP EBP ESI EDI. */
struct test_case {
  u32 regs[8];
  u32 eflags;
  u8 mode; /* 0: 32-bit code, 1: 16-bit code */
  u8 code_length;
  u8 patch_length;
  u8 reserved;
  u16 patch_offset; /* bytes written into the data region for this case only */
  u16 reserved2;
  u8 code[CODE_MAX];
  u8 patch[PATCH_MAX];
};

/* One result (RESULT_SIZE bytes). */
struct test_result {
  u32 signal;
  u32 trapno;
  u32 error;
  u32 eip;
  u32 eflags;
  u32 regs[8];
  u32 cr2;
  u32 cs, ss, ds, es, fs, gs;
  u32 diff_count;
  u32 diffs[MAX_DIFFS]; /* offset << 8 | new byte */
};

/* Kernel struct sigcontext_32 (arch/x86/include/uapi/asm/sigcontext.h). */
struct sigcontext32 {
  u32 gs, fs, es, ds, edi, esi, ebp, esp, ebx, edx, ecx, eax;
  u32 trapno, err, eip, cs, eflags, esp_at_signal, ss, fpstate, oldmask, cr2;
};

/* Kernel struct user_desc (arch/x86/include/uapi/asm/ldt.h). */
struct user_desc {
  u32 entry_number;
  u32 base_addr;
  u32 limit;
  u32 seg_32bit : 1, contents : 2, read_exec_only : 1, limit_in_pages : 1, seg_not_present : 1,
      useable : 1;
};

struct kernel_sigaction {
  void *handler;
  u32 flags;
  void *restorer;
  u32 mask[2];
};

#define SA_SIGINFO 0x00000004u
#define SA_ONSTACK 0x08000000u
#define SA_RESTORER 0x04000000u

static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long r;
  /* EBP carries the sixth argument; save it by hand (it may be the frame pointer). */
  __asm__ volatile("push %%ebp\n\tmov %7, %%ebp\n\tint $0x80\n\tpop %%ebp"
                   : "=a"(r)
                   : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e), "m"(f)
                   : "memory");
  return r;
}

static void die(const char *message) {
  u32 n = 0;
  while (message[n]) n++;
  sys3(4, 2, (long)message, n);
  sys3(1, 70, 0, 0);
}

static void copy(void *dst, const void *src, u32 n) {
  u8 *d = dst;
  const u8 *s = src;
  while (n--) *d++ = *s++;
}

/* Input and output buffers (bss). */
#define MAX_INPUT (16u << 20)
static u8 input[MAX_INPUT];
static u8 output[(MAX_INPUT / CASE_SIZE) * RESULT_SIZE / 4];
static u8 pristine[DATA_SIZE];
static u8 altstack[65536];

/* Shared with the assembly below. */
u32 saved_esp;
u32 case_regs[8]; /* popad order: EDI ESI EBP (ESP) EBX EDX ECX EAX */
u32 case_eflags;
u32 case_esp;
u16 case_data_selector;
u16 case_es_selector;
u16 case_fs_selector;
u32 case_far[2]; /* offset, selector (m16:32) */
static struct test_result *current;

void run_case(void);
void resume_case(void);
void signal_restorer(void);

/*
 * run_case: saves the harness's callee-saved registers and ESP, loads the
 * case's state, and far-jumps to the code. Returns when a signal handler
 * redirects to resume_case. Segment loads use CS-relative memory operands
 * because DS may already point at the 16-bit segment.
 */
__asm__(".text\n"
        ".globl run_case\n"
        "run_case:\n"
        "  push %ebp\n"
        "  push %ebx\n"
        "  push %esi\n"
        "  push %edi\n"
        "  mov %esp, saved_esp\n"
        "  mov $case_eflags, %esp\n"
        "  popfl\n"
        "  mov $case_regs, %esp\n"
        "  popal\n"
        "  mov %cs:case_fs_selector, %fs\n"
        "  mov %cs:case_fs_selector, %gs\n"
        "  mov %cs:case_es_selector, %es\n"
        "  mov %cs:case_data_selector, %ss\n"
        "  mov %cs:case_esp, %esp\n"
        "  mov %cs:case_data_selector, %ds\n"
        "  ljmp *%cs:case_far\n"
        ".globl resume_case\n"
        "resume_case:\n"
        "  pop %edi\n"
        "  pop %esi\n"
        "  pop %ebx\n"
        "  pop %ebp\n"
        "  ret\n"
        ".globl signal_restorer\n"
        "signal_restorer:\n"
        "  mov $173, %eax\n" /* rt_sigreturn */
        "  int $0x80\n");

static void handler(int signal, void *info, void *ucontext) {
  (void)info;
  /* struct ucontext_ia32: uc_flags, uc_link, uc_stack (3 words), then the sigcontext. */
  struct sigcontext32 *sc = (struct sigcontext32 *)((u8 *)ucontext + 20);
  struct test_result *r = current;
  r->signal = (u32)signal;
  r->trapno = sc->trapno;
  r->error = sc->err;
  r->eip = sc->eip;
  r->eflags = sc->eflags;
  r->regs[0] = sc->eax;
  r->regs[1] = sc->ecx;
  r->regs[2] = sc->edx;
  r->regs[3] = sc->ebx;
  r->regs[4] = sc->esp;
  r->regs[5] = sc->ebp;
  r->regs[6] = sc->esi;
  r->regs[7] = sc->edi;
  r->cr2 = sc->cr2;
  r->cs = sc->cs & 0xffff;
  r->ss = sc->ss & 0xffff;
  r->ds = sc->ds & 0xffff;
  r->es = sc->es & 0xffff;
  r->fs = sc->fs & 0xffff;
  r->gs = sc->gs & 0xffff;
  sc->eip = (u32)resume_case;
  sc->esp = saved_esp;
  sc->eflags = 0x202;
  sc->cs = SEL_CODE32;
  sc->ss = SEL_DATA32;
  sc->ds = SEL_DATA32;
  sc->es = SEL_DATA32;
  sc->fs = 0;
  sc->gs = 0;
}

static void install(int signal) {
  struct kernel_sigaction action;
  action.handler = (void *)handler;
  action.flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER;
  action.restorer = (void *)signal_restorer;
  action.mask[0] = 0;
  action.mask[1] = 0;
  if (sys6(174, signal, (long)&action, 0, 8, 0, 0) != 0) die("harness: rt_sigaction failed\n");
}

static void set_ldt(u32 entry, u32 base, u32 code) {
  struct user_desc d;
  d.entry_number = entry;
  d.base_addr = base;
  d.limit = 0xffff;
  d.seg_32bit = 0;
  d.contents = code ? 2 : 0;
  d.read_exec_only = 0;
  d.limit_in_pages = 0;
  d.seg_not_present = 0;
  d.useable = 0;
  /* func 0x11: write an LDT entry (modify_ldt(2)). */
  if (sys3(123, 0x11, (long)&d, sizeof d) != 0) die("harness: modify_ldt failed\n");
}

static u32 read_all(void) {
  u32 total = 0;
  for (;;) {
    long n = sys3(3, 0, (long)(input + total), MAX_INPUT - total);
    if (n < 0) die("harness: read failed\n");
    if (n == 0) return total;
    total += (u32)n;
    if (total == MAX_INPUT) die("harness: input too large\n");
  }
}

static void write_all(const u8 *data, u32 n) {
  while (n) {
    long w = sys3(4, 1, (long)data, n);
    if (w <= 0) die("harness: write failed\n");
    data += w;
    n -= (u32)w;
  }
}

void harness_main(void) {
  u32 length = read_all();
  if (length < 16 + DATA_SIZE || *(u32 *)input != MAGIC) die("harness: bad input\n");
  u32 count = *(u32 *)(input + 4);
  if (length != 16 + DATA_SIZE + count * CASE_SIZE) die("harness: bad input length\n");
  copy(pristine, input + 16, DATA_SIZE);

  /* mmap2(addr, len, PROT_READ|PROT_WRITE(|PROT_EXEC), MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) */
  if ((u32)sys6(192, DATA_BASE, DATA_SIZE, 3, 0x32, -1, 0) != DATA_BASE) die("harness: mmap data\n");
  if ((u32)sys6(192, CODE_BASE, 0x1000, 7, 0x32, -1, 0) != CODE_BASE) die("harness: mmap code\n");

  set_ldt(0, CODE_BASE, 1);
  set_ldt(1, DATA_BASE, 0);

  u32 stack[3] = {(u32)altstack, 0, sizeof altstack};
  if (sys3(186, (long)stack, 0, 0) != 0) die("harness: sigaltstack failed\n");
  install(4);  /* SIGILL */
  install(5);  /* SIGTRAP */
  install(7);  /* SIGBUS */
  install(8);  /* SIGFPE */
  install(11); /* SIGSEGV */
  install(14); /* SIGALRM: a case that never reaches its hlt */

  u8 *data = (u8 *)DATA_BASE;
  u8 *code = (u8 *)CODE_BASE;
  u32 out = 0;
  for (u32 i = 0; i < count; i++) {
    const struct test_case *c = (const struct test_case *)(input + 16 + DATA_SIZE + i * CASE_SIZE);
    struct test_result *r = (struct test_result *)(output + out);
    u32 *words = (u32 *)r;
    for (u32 w = 0; w < RESULT_SIZE / 4; w++) words[w] = 0;
    current = r;

    if (c->code_length > CODE_MAX || c->patch_length > PATCH_MAX ||
        c->patch_offset + c->patch_length > DATA_SIZE)
      die("harness: bad case\n");
    copy(data, pristine, DATA_SIZE);
    copy(data + c->patch_offset, c->patch, c->patch_length);
    for (u32 b = 0; b < 0x1000; b += 4) *(u32 *)(code + b) = 0xf4f4f4f4u;
    copy(code + CODE_OFFSET, c->code, c->code_length);

    /* popad order */
    case_regs[0] = c->regs[7];
    case_regs[1] = c->regs[6];
    case_regs[2] = c->regs[5];
    case_regs[3] = 0;
    case_regs[4] = c->regs[3];
    case_regs[5] = c->regs[2];
    case_regs[6] = c->regs[1];
    case_regs[7] = c->regs[0];
    case_esp = c->regs[4];
    case_eflags = c->eflags;
    if (c->mode == 1) {
      case_data_selector = SEL_DATA16;
      case_es_selector = SEL_DATA16;
      case_fs_selector = SEL_DATA16;
      case_far[0] = CODE_OFFSET;
      case_far[1] = SEL_CODE16;
    } else {
      case_data_selector = SEL_DATA32;
      case_es_selector = SEL_DATA16;
      case_fs_selector = SEL_DATA16;
      case_far[0] = CODE_BASE + CODE_OFFSET;
      case_far[1] = SEL_CODE32;
    }
    sys3(27, 2, 0, 0); /* alarm(2) */
    run_case();
    sys3(27, 0, 0, 0);

    copy(pristine + c->patch_offset, c->patch, c->patch_length);
    u32 diffs = 0;
    for (u32 b = 0; b < DATA_SIZE; b++) {
      if (data[b] != pristine[b]) {
        if (diffs < MAX_DIFFS) r->diffs[diffs] = (b << 8) | data[b];
        diffs++;
      }
    }
    r->diff_count = diffs;
    copy(pristine + c->patch_offset, input + 16 + c->patch_offset, c->patch_length);
    out += RESULT_SIZE;
    if (out + RESULT_SIZE > sizeof output) {
      write_all(output, out);
      out = 0;
    }
  }
  write_all(output, out);
  sys3(1, 0, 0, 0);
}

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  and $-16, %esp\n"
        "  call harness_main\n"
        "  hlt\n");

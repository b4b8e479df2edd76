/**
 * Hypercall dispatch (Xen arch/x86/hvm/hypercall.c, common/*.c): one table
 * from hypercall number to handler, the 32/64-bit argument conventions of
 * `VcpuExit.args`, and the handlers of the calls Linux 6.1 makes as a PVH or
 * arm64 domU (xen-abi.md 2). A handler returns the value for EAX/RAX/x0:
 * a result >= 0 or a negative Xen errno. Nothing the guest passes can make
 * one throw: every pointer is copied through `GuestAccess` (-EFAULT), every
 * index and count is range-checked first.
 */
import {
  ConsoleIo,
  DomId,
  Errno,
  EvtchnOp,
  GntCopy,
  GntMap,
  GntStatus,
  GnttabOp,
  HvmCallbackType,
  HvmOp,
  HvmParam,
  Hypercall,
  MapSpace,
  MemoryOp,
  SchedOp,
  VcpuOp,
  Virq,
  VmAssistCmd,
  VmAssistType,
  XenFeature,
  XenVersionOp,
} from "@kumo/abi";
import type { EventChannelStatus } from "@kumo/event-channel";
import { type GrantCopySideSpec, grantCopy } from "@kumo/grant-table";
import type { Domain } from "./domain";
import { advancePointer, type GuestAccess, type GuestPointer } from "./guest-access";
import { HVM_NR_PARAMS, XEN_MAJOR, XEN_MINOR } from "./layouts";
import { BlockReason, MAX_POLL_PORTS, type VcpuContext } from "./vcpu-context";

const TWO_POW_32 = 4294967296;
/** GFNs must stay below 2^40 (52-bit guest-physical addresses: Intel SDM vol. 3A 4.1.4, Arm FEAT_LPA). */
const MAX_GFN = 2 ** 40;
/**
 * Preemption of long batches (Xen hypercall_create_continuation): a
 * grant_table_op batch or a memory reservation op does at most this many
 * elements, then rewrites its argument registers to the rest of the work
 * (grant_table_op: the pointer advanced and the count reduced; memory_op:
 * the extents done in cmd's bits above MEMOP_EXTENT_SHIFT), exactly as Xen
 * does, and the vCPU's slice ends. The call is resumed at the vCPU's next
 * slice, before any guest instruction, so other vCPUs and domains and the
 * host event loop run in between and no call can hold the host for long.
 * Xen preempts when work is pending (hypercall_preempt_check); Kumo
 * preempts at fixed counts so that runs stay reproducible. Unlike Xen, the
 * guest takes no interrupt between the pieces (Xen re-executes the vmcall
 * after delivering one); Linux cannot tell the difference.
 */
export const GRANT_OPS_PER_PREEMPTION = 256;
export const EXTENTS_PER_PREEMPTION = 256;

/** A handler's answer meaning "preempted, arguments rewritten": never a Xen errno (> -4096) or result. */
const PREEMPTED = -0x80000000;
/** Xen public memory.h MEMOP_EXTENT_SHIFT: cmd bits above it carry the start extent. */
const MEMOP_EXTENT_SHIFT = 6;
const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;
/** Xen common/grant_table.c: cmd bits from 12 up are a continuation argument (cache_flush only). */
const GNTTABOP_CMD_MASK = 0xfff;

/** Arguments of the current call: halves of the six argument registers. */
class CallArgs {
  args: Uint32Array = new Uint32Array(12);
  low(i: number): number {
    return this.args[2 * i];
  }
  high(i: number): number {
    return this.args[2 * i + 1];
  }
  /** Argument i as a signed 32-bit int (Xen `int` / `unsigned int` parameters such as cmd and count). */
  u32(i: number): number {
    return this.args[2 * i] >>> 0;
  }
  /** Argument i as an unsigned long: 64-bit for 64-bit callers, 32-bit otherwise (exact below 2^53). */
  ulong(i: number, longMode: boolean): number {
    return longMode ? this.args[2 * i + 1] * TWO_POW_32 + this.args[2 * i] : this.args[2 * i];
  }
  /** Rewrites argument register i for a continuation (Xen hypercall_create_continuation). */
  set(i: number, value: number): void {
    this.args[2 * i] = value >>> 0;
    this.args[2 * i + 1] = Math.floor(value / TWO_POW_32) >>> 0;
  }
}

type Handler = (
  domain: Domain,
  context: VcpuContext,
  access: GuestAccess,
  call: CallArgs,
) => number;

const call = new CallArgs();
const pointer: GuestPointer = { low: 0, high: 0 };
const element: GuestPointer = { low: 0, high: 0 };
const statusOut: EventChannelStatus = { status: 0, vcpu: 0, first: 0, second: 0 };

/**
 * Handles the Hypercall exit of `context`'s CPU and writes the result back.
 * Unknown numbers answer -ENOSYS; x86 callers above CPL 0 get -EPERM
 * (Xen hvm_hypercall: "hypercall from user mode").
 */
export function dispatchHypercall(domain: Domain, context: VcpuContext): void {
  const vcpu = context.vcpu;
  const access = context.access;
  if (vcpu === null || access === null) return;
  const exit = vcpu.exit;
  const longMode = exit.longMode || domain.architecture === "arm64";
  access.longMode = longMode;
  context.lastLongMode = longMode;
  call.args = exit.args;
  let result: number;
  if (domain.architecture === "x86" && exit.privilege > 0) {
    result = -Errno.EPERM;
  } else {
    const handler =
      exit.hypercall >= 0 && exit.hypercall < HANDLERS.length
        ? HANDLERS[exit.hypercall]
        : undefined;
    result = handler === undefined ? -Errno.ENOSYS : handler(domain, context, access, call);
  }
  if (domain.state === "destroyed") return;
  if (result === PREEMPTED) {
    // The arguments in `exit.args` now describe the rest of the work: the scheduler calls
    // `resumeHypercall` at this vCPU's next slice, before the guest runs again.
    context.continuation = true;
    domain.hypervisor.scheduler.yieldCurrent();
    return;
  }
  if (result < 0) vcpu.completeHypercall(result >>> 0, 0xffffffff);
  else vcpu.completeHypercall(result >>> 0, Math.floor(result / TWO_POW_32) >>> 0);
}

/** Resumes a preempted hypercall of `context` (see GRANT_OPS_PER_PREEMPTION). */
export function resumeHypercall(domain: Domain, context: VcpuContext): void {
  context.continuation = false;
  dispatchHypercall(domain, context);
}

/** DOMID_SELF or the caller's own id names the caller; anything else is refused for unprivileged callers. */
function isSelf(domain: Domain, domid: number): boolean {
  return domid === DomId.SELF || domid === domain.domid;
}

// ---- xen_version (17) ------------------------------------------------------------------------

/** XENVER_get_features submap 0 (xen-abi.md 2.2). */
export function featureBits(domain: Domain): number {
  let bits =
    (1 << XenFeature.writable_page_tables) |
    (1 << XenFeature.auto_translated_physmap) |
    (1 << XenFeature.not_direct_mapped);
  if (domain.architecture === "x86")
    bits |= (1 << XenFeature.hvm_callback_vector) | (1 << XenFeature.hvm_safe_pvclock);
  else bits |= 1 << XenFeature.ARM_SMCCC_supported;
  return bits >>> 0;
}

const EXTRAVERSION = new TextEncoder().encode(".0");

function xenVersion(
  domain: Domain,
  _context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  const cmd = args.u32(0);
  switch (cmd) {
    case XenVersionOp.version:
      return ((XEN_MAJOR << 16) | XEN_MINOR) >>> 0;
    case XenVersionOp.extraversion: {
      access.scratch.fill(0, 0, 16);
      access.scratch.set(EXTRAVERSION, 0);
      return access.writeVirtual(args.low(1), args.high(1), access.scratch, 0, 16)
        ? 0
        : -Errno.EFAULT;
    }
    case XenVersionOp.get_features: {
      if (!access.readStruct(args.low(1), args.high(1), 8)) return -Errno.EFAULT;
      if (access.view.getUint32(0, true) !== 0) return -Errno.EINVAL;
      access.view.setUint32(4, featureBits(domain), true);
      return access.writeStructField(args.low(1), args.high(1), 4, 4) ? 0 : -Errno.EFAULT;
    }
    case XenVersionOp.pagesize:
      return 4096;
    case XenVersionOp.compile_info:
    case XenVersionOp.capabilities:
    case XenVersionOp.changeset:
    case XenVersionOp.platform_parameters:
    case XenVersionOp.guest_handle:
    case XenVersionOp.commandline:
    case XenVersionOp.build_id:
      // Release Xen hides build details from unprivileged guests (xen-abi.md 2.1: OPT -EPERM).
      return -Errno.EPERM;
    default:
      return -Errno.ENOSYS;
  }
}

// ---- memory_op (12) --------------------------------------------------------------------------

function memoryOp(
  domain: Domain,
  _context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  // cmd bits above MEMOP_EXTENT_SHIFT carry a start extent (Xen do_memory_op): the reservation
  // ops resume there, add_to_physmap refuses any that does not fit xatp.size (-EDOM), the rest
  // any at all (-EINVAL).
  const wide = access.longMode;
  const cmd = args.u32(0) & MEMOP_CMD_MASK;
  const startExtent = Math.floor(args.ulong(0, wide) / (1 << MEMOP_EXTENT_SHIFT));
  const at = { low: args.low(1), high: args.high(1) };
  if (startExtent !== 0) {
    if (cmd === MemoryOp.add_to_physmap && startExtent > 0xffff) return -Errno.EDOM;
    if (
      cmd === MemoryOp.remove_from_physmap ||
      cmd === MemoryOp.current_reservation ||
      cmd === MemoryOp.maximum_reservation ||
      cmd === MemoryOp.maximum_ram_page ||
      cmd === MemoryOp.maximum_gpfn
    )
      return -Errno.EINVAL;
  }
  switch (cmd) {
    case MemoryOp.add_to_physmap: {
      const size = wide ? 24 : 16;
      if (!access.readStruct(at.low, at.high, size)) return -Errno.EFAULT;
      const domid = access.view.getUint16(0, true);
      const space = access.view.getUint32(4, true);
      const idx = wide ? access.u64At(8) : access.view.getUint32(8, true);
      const gpfn = wide ? access.u64At(16) : access.view.getUint32(12, true);
      if (!isSelf(domain, domid)) return -Errno.ESRCH;
      return addToPhysmap(domain, space, idx, gpfn);
    }
    case MemoryOp.remove_from_physmap: {
      if (!access.readStruct(at.low, at.high, wide ? 16 : 8)) return -Errno.EFAULT;
      const domid = access.view.getUint16(0, true);
      const gpfn = wide ? access.u64At(8) : access.view.getUint32(4, true);
      if (!isSelf(domain, domid)) return -Errno.ESRCH;
      return removeFromPhysmap(domain, gpfn);
    }
    case MemoryOp.memory_map: {
      if (!access.readStruct(at.low, at.high, wide ? 16 : 8)) return -Errno.EFAULT;
      const capacity = access.view.getUint32(0, true);
      access.handleAt(wide ? 8 : 4, pointer);
      const entries = domain.memoryMap;
      const count = Math.min(capacity, entries.length);
      const record = new Uint8Array(20);
      const view = new DataView(record.buffer);
      for (let i = 0; i < count; i++) {
        const entry = entries[i];
        view.setUint32(0, entry.address >>> 0, true);
        view.setUint32(4, Math.floor(entry.address / TWO_POW_32), true);
        view.setUint32(8, entry.size >>> 0, true);
        view.setUint32(12, Math.floor(entry.size / TWO_POW_32), true);
        view.setUint32(16, entry.type, true);
        advancePointer(pointer, i * 20, element);
        if (!access.writeVirtual(element.low, element.high, record, 0, 20)) return -Errno.EFAULT;
      }
      access.view.setUint32(0, count, true);
      return access.writeStructField(at.low, at.high, 0, 4) ? 0 : -Errno.EFAULT;
    }
    case MemoryOp.increase_reservation:
    case MemoryOp.decrease_reservation:
    case MemoryOp.populate_physmap:
      return reservation(domain, access, args, cmd, startExtent, at.low, at.high);
    case MemoryOp.current_reservation:
    case MemoryOp.maximum_reservation: {
      // The argument is a pointer to a domid_t (Xen do_memory_op).
      if (!access.readStruct(at.low, at.high, 2)) return -Errno.EFAULT;
      const domid = access.view.getUint16(0, true);
      // Xen: an unknown domain is -ESRCH, another's is refused by XSM (-EPERM).
      if (!isSelf(domain, domid))
        return domain.hypervisor.domain(domid) === undefined ? -Errno.ESRCH : -Errno.EPERM;
      const memory = domain.memory;
      if (memory === null) return 0;
      if (cmd === MemoryOp.maximum_reservation) return memory.ram.size / 4096;
      let present = 0;
      const states = memory.ram.frameState;
      for (let i = 0; i < states.length; i++) if (states[i] !== 1) present++;
      return present;
    }
    case MemoryOp.maximum_ram_page:
    case MemoryOp.maximum_gpfn: {
      const memory = domain.memory;
      return memory === null ? 0 : (memory.ram.base + memory.ram.size) / 4096 - 1;
    }
    default:
      return -Errno.ENOSYS;
  }
}

/** XENMEM_add_to_physmap for the spaces Linux uses (xen-abi.md 2.3). */
export function addToPhysmap(domain: Domain, space: number, idx: number, gpfn: number): number {
  const memory = domain.memory;
  if (memory === null) return -Errno.EINVAL;
  if (!Number.isSafeInteger(gpfn) || gpfn < 0 || gpfn >= MAX_GFN) return -Errno.EINVAL;
  switch (space) {
    case MapSpace.shared_info: {
      if (idx !== 0) return -Errno.EINVAL;
      if (domain.sharedInfoGfn >= 0 && domain.sharedInfoGfn !== gpfn)
        memory.unmapFrame(domain.sharedInfoGfn);
      forgetXenPageAt(domain, gpfn);
      memory.mapFrame(gpfn, domain.sharedInfo, true);
      domain.sharedInfoGfn = gpfn;
      return 0;
    }
    case MapSpace.grant_table: {
      const grants = domain.grants;
      if (grants === null) return -Errno.EINVAL;
      // Bit 31 (XENMAPIDX_grant_table_status) names a v2 status frame: none in v1.
      if (idx >= 0x80000000) return -Errno.EINVAL;
      const frame = grants.frameForPhysmap(idx);
      if (frame === null) return -Errno.EINVAL;
      const previous = domain.grantFrameGfns[idx] ?? -1;
      if (previous >= 0 && previous !== gpfn) memory.unmapFrame(previous);
      forgetXenPageAt(domain, gpfn);
      memory.mapFrame(gpfn, frame, true);
      domain.grantFrameGfns[idx] = gpfn;
      return 0;
    }
    default:
      // gmfn, gmfn_range, gmfn_foreign, dev_mmio: not offered to guests.
      return -Errno.ENOSYS;
  }
}

/** A Xen page moved onto `gpfn` replaces whatever hypervisor page was mapped there. */
function forgetXenPageAt(domain: Domain, gpfn: number): void {
  if (domain.sharedInfoGfn === gpfn) domain.sharedInfoGfn = -1;
  for (let i = 0; i < domain.grantFrameGfns.length; i++) {
    if (domain.grantFrameGfns[i] === gpfn) domain.grantFrameGfns[i] = -1;
  }
  // A grant mapped there by the guest is replaced: drop its pin too.
  const handle = domain.grantMapsByGfn.get(gpfn);
  if (handle !== undefined) {
    domain.grantMapsByGfn.delete(gpfn);
    domain.grantMapGfns.delete(handle);
    domain.maptrack.unmap(handle);
  }
}

/** GNTTABOP_map_grant_ref from a guest: returns the handle or a GNTST_* status (< 0). */
function guestMapGrant(
  domain: Domain,
  hostAddress: number,
  flags: number,
  ref: number,
  dom: number,
): number {
  const memory = domain.memory;
  if (memory === null) return GntStatus.general_error;
  // Translated guests may only ask for a host mapping, optionally read-only (Xen create_grant_p2m_mapping).
  if ((flags & ~GntMap.readonly) !== GntMap.host_map) return GntStatus.general_error;
  const gfn = Math.floor(hostAddress / 4096);
  if (!Number.isSafeInteger(gfn) || gfn >= MAX_GFN) return GntStatus.general_error;
  if (domain.grantMapsByGfn.has(gfn)) return GntStatus.general_error;
  const granter = isSelf(domain, dom) ? domain : domain.hypervisor.domain(dom);
  const writable = (flags & GntMap.readonly) === 0;
  const result = domain.maptrack.map(granter?.grants ?? undefined, ref, writable);
  if (result.status !== GntStatus.okay || result.view === null) return result.status;
  forgetXenPageAt(domain, gfn);
  if (gfn === domain.sharedInfoGfn) domain.sharedInfoGfn = -1;
  memory.mapFrame(gfn, result.view, writable);
  domain.grantMapsByGfn.set(gfn, result.handle);
  domain.grantMapGfns.set(result.handle, gfn);
  return result.handle;
}

/** GNTTABOP_unmap_grant_ref from a guest: the handle must be one of its mappings, at host_addr. */
function guestUnmapGrant(domain: Domain, hostAddress: number, handle: number): number {
  const gfn = domain.grantMapGfns.get(handle);
  if (gfn === undefined) return GntStatus.bad_handle;
  if (Math.floor(hostAddress / 4096) !== gfn) return GntStatus.general_error;
  domain.grantMapGfns.delete(handle);
  domain.grantMapsByGfn.delete(gfn);
  domain.memory?.unmapFrame(gfn);
  return domain.maptrack.unmap(handle);
}

function removeFromPhysmap(domain: Domain, gpfn: number): number {
  const memory = domain.memory;
  if (memory === null || !Number.isSafeInteger(gpfn) || gpfn < 0 || gpfn >= MAX_GFN)
    return -Errno.EINVAL;
  if (memory.unmapFrame(gpfn)) {
    forgetXenPageAt(domain, gpfn);
    return 0;
  }
  return memory.removeFrame(gpfn) ? 0 : -Errno.EINVAL;
}

const extentBytes = new Uint8Array(8);
const extentView = new DataView(extentBytes.buffer);

/**
 * increase_reservation / decrease_reservation / populate_physmap (Xen
 * common/memory.c do_memory_op): returns the number of extents done, counted
 * from the start extent in cmd; every refusal (unreadable struct, more
 * extents than a continuation can encode, start beyond the end, another
 * domain, an order above 0) answers the start extent, and the loop stops at
 * the first extent that fails, as Xen's do. Order-0 extents only: Linux's
 * balloon and grant-frame allocations use order 0 (drivers/xen/balloon.c
 * EXTENT_ORDER with 4 KiB pages). increase_reservation of a translated guest
 * gives pages without a GFN (Xen leaves them out of the p2m); Kumo's RAM has
 * none such, so it answers as Xen does at max_pages: no extent done.
 */
function reservation(
  domain: Domain,
  access: GuestAccess,
  args: CallArgs,
  cmd: number,
  startExtent: number,
  low: number,
  high: number,
): number {
  const wide = access.longMode;
  if (!access.readStruct(low, high, wide ? 32 : 20)) return startExtent;
  access.handleAt(0, pointer);
  const extents = wide ? access.u64At(8) : access.view.getUint32(4, true);
  const order = access.view.getUint32(wide ? 16 : 8, true);
  const domid = access.view.getUint16(wide ? 24 : 16, true);
  if (extents > 0xffffffff >>> MEMOP_EXTENT_SHIFT) return startExtent;
  if (startExtent >= extents) return startExtent;
  if (!isSelf(domain, domid)) return startExtent;
  const memory = domain.memory;
  if (memory === null || order !== 0) return startExtent;
  if (cmd === MemoryOp.increase_reservation) return startExtent;
  const entrySize = wide ? 8 : 4;
  const end = Math.min(extents, startExtent + EXTENTS_PER_PREEMPTION);
  let done = startExtent;
  for (; done < end; done++) {
    advancePointer(pointer, done * entrySize, element);
    if (!access.readVirtual(element.low, element.high, entrySize, extentBytes, 0)) return done;
    const gfn = wide
      ? extentView.getUint32(4, true) * TWO_POW_32 + extentView.getUint32(0, true)
      : extentView.getUint32(0, true);
    if (gfn >= MAX_GFN) return done;
    const ok =
      cmd === MemoryOp.decrease_reservation ? memory.removeFrame(gfn) : memory.populateFrame(gfn);
    if (!ok) return done;
  }
  if (done < extents) {
    // Xen: hypercall_create_continuation(memory_op, "lh", op | (done << MEMOP_EXTENT_SHIFT), arg).
    args.set(0, cmd + done * (1 << MEMOP_EXTENT_SHIFT));
    return PREEMPTED;
  }
  return done;
}

// ---- hvm_op (34) -----------------------------------------------------------------------------

function hvmOp(domain: Domain, _context: VcpuContext, access: GuestAccess, args: CallArgs): number {
  const cmd = args.u32(0);
  const low = args.low(1);
  const high = args.high(1);
  switch (cmd) {
    case HvmOp.set_param:
    case HvmOp.get_param: {
      if (!access.readStruct(low, high, 16)) return -Errno.EFAULT;
      const domid = access.view.getUint16(0, true);
      const index = access.view.getUint32(4, true);
      if (!isSelf(domain, domid)) return -Errno.ESRCH;
      if (index >= HVM_NR_PARAMS) return -Errno.EINVAL;
      if (cmd === HvmOp.get_param) {
        access.view.setUint32(8, domain.hvmParams[index * 2], true);
        access.view.setUint32(12, domain.hvmParams[index * 2 + 1], true);
        return access.writeStructField(low, high, 8, 8) ? 0 : -Errno.EFAULT;
      }
      // Only CALLBACK_IRQ is guest-settable; store/console and the rest belong to the toolstack.
      if (index !== HvmParam.CALLBACK_IRQ) return -Errno.EPERM;
      const valueLow = access.view.getUint32(8, true);
      const valueHigh = access.view.getUint32(12, true);
      setCallbackIrq(domain, valueLow, valueHigh, access.longMode);
      return 0;
    }
    case HvmOp.set_evtchn_upcall_vector: {
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      const vcpuId = access.view.getUint32(0, true);
      const vector = access.view.getUint8(4);
      if (vector < 0x10) return -Errno.EINVAL;
      const target = domain.vcpus[vcpuId];
      if (target === undefined) return -Errno.ENOENT;
      target.upcallVector = vector;
      return 0;
    }
    case HvmOp.get_time: {
      access.setU64At(0, domain.clock.now());
      return access.writeVirtual(low, high, access.scratch, 0, 8) ? 0 : -Errno.EFAULT;
    }
    default:
      // pagetable_dying and the rest: -ENOSYS (xen-abi.md 2.4 recommends it for pagetable_dying).
      return -Errno.ENOSYS;
  }
}

/** HVM_PARAM_CALLBACK_IRQ: type in bits 63:56; type 2 = x86 vector in bits 7:0 (xen-abi.md 2.4). */
export function setCallbackIrq(domain: Domain, low: number, high: number, longMode: boolean): void {
  domain.setParamHalves(HvmParam.CALLBACK_IRQ, low, high);
  const type = high >>> 24;
  domain.callbackVector =
    type === HvmCallbackType.VECTOR && domain.architecture === "x86" ? low & 0xff : 0;
  // Xen latches the shared_info layout here.
  domain.latchAbi(longMode);
  if (domain.callbackVector !== 0) {
    for (const context of domain.vcpus) if (context.upcallPending()) context.kick();
  }
}

// ---- vcpu_op (24) ----------------------------------------------------------------------------

function vcpuOp(domain: Domain, context: VcpuContext, access: GuestAccess, args: CallArgs): number {
  const cmd = args.u32(0);
  // Xen on arm (arch/arm/domain.c do_arm_vcpu_op) offers only these two; the rest is -EINVAL
  // before the vCPU id is looked at. Linux on arm64 uses PSCI and the arch timer instead.
  if (
    domain.architecture === "arm64" &&
    cmd !== VcpuOp.register_vcpu_info &&
    cmd !== VcpuOp.register_runstate_memory_area
  )
    return -Errno.EINVAL;
  const target = domain.vcpus[args.u32(1)];
  const low = args.low(2);
  const high = args.high(2);
  if (target === undefined) return -Errno.ENOENT;
  switch (cmd) {
    case VcpuOp.register_vcpu_info: {
      if (!access.readStruct(low, high, 16)) return -Errno.EFAULT;
      const gfn = access.u64At(0);
      const offset = access.view.getUint32(8, true);
      return registerVcpuInfo(domain, target, gfn, offset);
    }
    case VcpuOp.register_runstate_memory_area: {
      // Xen common/domain.c: the union is 8 bytes in every ABI (uint64_t p); a 32-bit caller's
      // pointer is the low half (Linux leaves the rest of the on-stack union uninitialised). The
      // address is not checked here (guest_handle_okay is true for translated guests); a null
      // handle unregisters. The current runstate is copied at once through the caller's
      // translation, failures ignored; later copies go through the target's (context switch).
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      const runstate = target.runstate;
      runstate.areaLow = access.view.getUint32(0, true);
      runstate.areaHigh = access.longMode ? access.view.getUint32(4, true) : 0;
      runstate.registered = runstate.areaLow !== 0 || runstate.areaHigh !== 0;
      if (runstate.registered) {
        const size = runstate.encode(domain.abi, domain.clock.now(), target !== context);
        access.writeVirtual(runstate.areaLow, runstate.areaHigh, runstate.bytes, 0, size);
      }
      return 0;
    }
    case VcpuOp.register_vcpu_time_memory_area: {
      // Xen arch/x86/domain.c arch_do_vcpu_op: the same 8-byte union as the runstate area (a
      // 32-bit caller's pointer is the low half), not checked (guest_handle_okay is true for a
      // translated guest), null unregisters; force_update_vcpu_system_time then writes it at once
      // through the caller's translation, failures ignored. Linux's vDSO pvclock uses it
      // (arch/x86/xen/time.c xen_setup_vsyscall_time_info). Arm never gets here (-EINVAL above).
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      target.timeAreaLow = access.view.getUint32(0, true);
      target.timeAreaHigh = access.longMode ? access.view.getUint32(4, true) : 0;
      target.timeAreaRegistered = target.timeAreaLow !== 0 || target.timeAreaHigh !== 0;
      domain.updateTime(target, access);
      return 0;
    }
    case VcpuOp.get_runstate_info: {
      // Any vCPU of the caller's domain, time counted up to now (Xen vcpu_runstate_get).
      const size = target.runstate.encode(
        access.longMode ? (domain.architecture === "arm64" ? "a64" : "x64") : "x32",
        domain.clock.now(),
        true,
      );
      return access.writeVirtual(low, high, target.runstate.bytes, 0, size) ? 0 : -Errno.EFAULT;
    }
    case VcpuOp.set_periodic_timer: {
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      const period = access.u64At(0);
      // Xen: 1 ms minimum, STIME_DELTA_MAX maximum.
      if (period < 1e6 || period > 2 ** 62) return -Errno.EINVAL;
      target.periodicPeriod = period;
      target.periodicDeadline = domain.clock.now() + period;
      domain.hypervisor.scheduler.wake();
      return 0;
    }
    case VcpuOp.stop_periodic_timer:
      target.periodicPeriod = 0;
      target.periodicDeadline = Number.POSITIVE_INFINITY;
      return 0;
    case VcpuOp.set_singleshot_timer: {
      if (target !== context) return -Errno.EINVAL;
      if (!access.readStruct(low, high, 12)) return -Errno.EFAULT;
      const timeout = access.u64At(0);
      const flags = access.view.getUint32(8, true);
      const now = domain.clock.now();
      // VCPU_SSHOTTMR_future: refuse a deadline in the past (Xen vcpu.c).
      if (flags & 1 && timeout < now) return -Errno.ETIME;
      target.singleshotDeadline = timeout;
      domain.hypervisor.scheduler.wake();
      return 0;
    }
    case VcpuOp.stop_singleshot_timer:
      if (target !== context) return -Errno.EINVAL;
      target.singleshotDeadline = Number.POSITIVE_INFINITY;
      return 0;
    case VcpuOp.up:
      // PVH/HVM vCPUs must have a CPU (Xen: initialised) to come up.
      if (target.vcpu === null) return -Errno.EINVAL;
      domain.startVcpu(target.id);
      return 0;
    case VcpuOp.down: {
      target.online = false;
      target.wake();
      target.settleRunstate();
      // The last vCPU going down powers the domain off (Xen common/domain.c vcpu_down).
      if (!domain.vcpus.some((other) => other.online)) domain.shutdown(0);
      return 0;
    }
    case VcpuOp.is_up:
      return target.online ? 1 : 0;
    default:
      // initialise, send_nmi, get_physid: not offered.
      return -Errno.ENOSYS;
  }
}

/**
 * VCPUOP_register_vcpu_info (xen-abi.md 2.8): the area must lie in one RAM
 * page; once per vCPU. The current contents move there, every selector bit
 * and upcall_pending are set so the guest rescans, and time is refreshed.
 */
export function registerVcpuInfo(
  domain: Domain,
  target: VcpuContext,
  gfn: number,
  offset: number,
): number {
  const memory = domain.memory;
  if (memory === null) return -Errno.EINVAL;
  if (target.vcpuInfoRegistered) return -Errno.EINVAL;
  const size = domain.layout.vcpuInfoSize;
  if (offset > 4096 - size) return -Errno.EINVAL;
  if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn >= MAX_GFN) return -Errno.EINVAL;
  // Own RAM only: not a hypervisor page such as shared_info or a grant frame.
  if (memory.frameKind(gfn) !== "ram") return -Errno.EINVAL;
  const page = memory.frame(gfn);
  if (page === null) return -Errno.EINVAL;
  const old = target.vcpuInfoPage;
  if (old !== null)
    page.set(old.subarray(target.vcpuInfoOffset, target.vcpuInfoOffset + size), offset);
  else page.fill(0, offset, offset + size);
  domain.setVcpuInfo(target, page, offset);
  target.vcpuInfoRegistered = true;
  domain.updateTime(target);
  domain.twoLevel?.forceRescan(target.id);
  return 0;
}

// ---- sched_op (29) ---------------------------------------------------------------------------

function schedOp(
  domain: Domain,
  context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  const cmd = args.u32(0);
  const low = args.low(1);
  const high = args.high(1);
  switch (cmd) {
    case SchedOp.yield:
      domain.hypervisor.scheduler.yieldCurrent();
      return 0;
    case SchedOp.block:
      // Xen do_block: local_event_delivery_enable() clears evtchn_upcall_mask, then the vCPU does
      // not sleep when an event is already waiting (upcall_pending, or any deliverable interrupt:
      // local_events_need_delivery; xen-abi.md 2.7).
      enableEventDelivery(context);
      if (!context.upcallPending() && !context.eventsNeedDelivery())
        context.blocked = BlockReason.Block;
      return 0;
    case SchedOp.shutdown: {
      if (!access.readStruct(low, high, 4)) return -Errno.EFAULT;
      domain.shutdown(access.view.getUint32(0, true));
      return 0;
    }
    case SchedOp.poll:
      return poll(domain, context, access, low, high);
    case SchedOp.remote_shutdown:
      return domain.privileged ? -Errno.ENOSYS : -Errno.EPERM;
    default:
      return -Errno.ENOSYS;
  }
}

/**
 * Xen x86 local_event_delivery_enable: evtchn_upcall_mask (vcpu_info byte 1) = 0; PVH/HVM
 * delivery ignores it (xen-abi.md 3.1). On arm64 the byte is padding and Xen clears PSTATE.I
 * instead, which the Vcpu contract cannot do: left alone there.
 */
function enableEventDelivery(context: VcpuContext): void {
  if (context.domain.architecture !== "x86") return;
  const page = context.vcpuInfoPage;
  if (page !== null) page[context.vcpuInfoOffset + 1] = 0;
}

/** SCHEDOP_poll (xen-abi.md 2.7): return at once if a listed port is pending, else block until one is raised or timeout. */
function poll(
  domain: Domain,
  context: VcpuContext,
  access: GuestAccess,
  low: number,
  high: number,
): number {
  const wide = access.longMode;
  if (!access.readStruct(low, high, wide ? 24 : 16)) return -Errno.EFAULT;
  access.handleAt(0, pointer);
  const count = access.view.getUint32(wide ? 8 : 4, true);
  const timeout = access.u64At(wide ? 16 : 8);
  if (count > MAX_POLL_PORTS) return -Errno.EINVAL;
  const ports = new Uint8Array(count * 4);
  if (count > 0 && !access.readVirtual(pointer.low, pointer.high, count * 4, ports, 0))
    return -Errno.EFAULT;
  const view = new DataView(ports.buffer);
  const sink = domain.twoLevel;
  for (let i = 0; i < count; i++) {
    const port = view.getUint32(i * 4, true);
    if (port >= domain.events.portLimit) return -Errno.EINVAL;
    if (sink?.isPending(port)) return 0;
    context.pollPorts[i] = port;
  }
  if (timeout !== 0 && timeout <= domain.clock.now()) return 0;
  // Xen do_poll returns at once when local_events_need_delivery(): the events that would have
  // woken the poller (upcall_pending 0 -> 1, a LAPIC interrupt) may already have happened and
  // will not kick again, so sleeping here would lose the wakeup (xen/common/sched/core.c).
  if (context.eventsNeedDelivery()) return 0;
  context.pollCount = count;
  context.pollDeadline = timeout === 0 ? Number.POSITIVE_INFINITY : timeout;
  context.blocked = BlockReason.Poll;
  return 0;
}

// ---- set_timer_op (15) -----------------------------------------------------------------------

function setTimerOp(
  domain: Domain,
  context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  // 64-bit: the deadline in RDI; 32-bit: EBX low, ECX high (xen-abi.md 2.9).
  const timeout = access.longMode
    ? args.high(0) * TWO_POW_32 + args.low(0)
    : args.low(1) * TWO_POW_32 + args.low(0);
  context.singleshotDeadline = timeout === 0 ? Number.POSITIVE_INFINITY : timeout;
  domain.hypervisor.scheduler.wake();
  return 0;
}

// ---- vm_assist (21) --------------------------------------------------------------------------

/**
 * Xen common/domain.c do_vm_assist: a type outside the architecture's valid
 * mask is -EINVAL, then enable/disable set or clear it, another cmd -ENOSYS.
 * The mask for HVM/PVH (x86 arch_vm_assist_valid_mask, Xen commit "x86/HVM:
 * expose VM assist hypercall", 2020) and arm (VM_ASSIST_VALID) is
 * runstate_update_flag alone; Linux asks for it in drivers/xen/time.c
 * xen_time_setup_guest.
 */
function vmAssist(
  domain: Domain,
  _context: VcpuContext,
  _access: GuestAccess,
  args: CallArgs,
): number {
  const cmd = args.u32(0);
  const type = args.u32(1);
  if (type !== VmAssistType.runstate_update_flag) return -Errno.EINVAL;
  if (cmd === VmAssistCmd.enable) domain.vmAssist |= 1 << type;
  else if (cmd === VmAssistCmd.disable) domain.vmAssist &= ~(1 << type);
  else return -Errno.ENOSYS;
  return 0;
}

// ---- physdev_op (33) -------------------------------------------------------------------------

/**
 * A PVH/HVM domU without PIRQs (Kumo has no passthrough) gets -ENOSYS for
 * every sub-op (Xen arch/x86/hvm/hypercall.c hvm_physdev_op: map/unmap_pirq,
 * eoi, irq_status_query and get_free_pirq need has_pirq; the rest needs the
 * hardware domain), as on arm (xen/arch/arm/physdev.c). Linux reaches
 * physdev_op only for PIRQs and PV (drivers/xen/events/events_base.c), and
 * treats a failed irq_status_query as "no EOI needed".
 */
function physdevOp(
  _domain: Domain,
  _context: VcpuContext,
  _access: GuestAccess,
  _args: CallArgs,
): number {
  return -Errno.ENOSYS;
}

// ---- console_io (18) -------------------------------------------------------------------------

/** Bytes of one CONSOLEIO_write taken at a time (Xen guest_console_write chunks by 128 with preemption). */
const CONSOLE_CHUNK = 256;
const consoleBuffer = new Uint8Array(CONSOLE_CHUNK);

function consoleIo(
  domain: Domain,
  _context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  const cmd = args.u32(0);
  const count = args.u32(1);
  if (cmd === ConsoleIo.read) return 0;
  if (cmd !== ConsoleIo.write) return -Errno.ENOSYS;
  // The rate limit bounds the work: bytes beyond the allowance are not even read.
  const budget = Math.min(count, domain.consoleAllowance() + 1);
  let done = 0;
  while (done < budget) {
    const chunk = Math.min(CONSOLE_CHUNK, budget - done);
    advancePointer({ low: args.low(2), high: args.high(2) }, done, element);
    if (!access.readVirtual(element.low, element.high, chunk, consoleBuffer, 0))
      return -Errno.EFAULT;
    domain.consoleWrite(consoleBuffer.subarray(0, chunk));
    done += chunk;
  }
  return 0;
}

// ---- event_channel_op (32) -------------------------------------------------------------------

function eventChannelOp(
  domain: Domain,
  _context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  const cmd = args.u32(0);
  const low = args.low(1);
  const high = args.high(1);
  const events = domain.events;
  const view = access.view;
  switch (cmd) {
    case EvtchnOp.alloc_unbound: {
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      const dom = view.getUint16(0, true);
      if (!isSelf(domain, dom))
        return domain.hypervisor.domain(dom) === undefined ? -Errno.ESRCH : -Errno.EPERM;
      const port = events.allocUnbound(view.getUint16(2, true));
      return writePortOut(access, low, high, 4, port);
    }
    case EvtchnOp.bind_interdomain: {
      if (!access.readStruct(low, high, 12)) return -Errno.EFAULT;
      const port = events.bindInterdomain(view.getUint16(0, true), view.getUint32(4, true));
      return writePortOut(access, low, high, 8, port);
    }
    case EvtchnOp.bind_virq: {
      if (!access.readStruct(low, high, 12)) return -Errno.EFAULT;
      const port = events.bindVirq(view.getUint32(0, true), view.getUint32(4, true));
      return writePortOut(access, low, high, 8, port);
    }
    case EvtchnOp.bind_ipi: {
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      const port = events.bindIpi(view.getUint32(0, true));
      return writePortOut(access, low, high, 4, port);
    }
    case EvtchnOp.close:
    case EvtchnOp.send:
    case EvtchnOp.unmask: {
      if (!access.readStruct(low, high, 4)) return -Errno.EFAULT;
      const port = view.getUint32(0, true);
      if (cmd === EvtchnOp.close) return events.close(port);
      if (cmd === EvtchnOp.send) return events.send(port);
      return events.unmask(port);
    }
    case EvtchnOp.status: {
      if (!access.readStruct(low, high, 24)) return -Errno.EFAULT;
      const dom = view.getUint16(0, true);
      if (!isSelf(domain, dom))
        return domain.hypervisor.domain(dom) === undefined ? -Errno.ESRCH : -Errno.EPERM;
      const result = events.status(view.getUint32(4, true), statusOut);
      if (result < 0) return result;
      view.setUint32(8, statusOut.status, true);
      view.setUint32(12, statusOut.vcpu, true);
      view.setUint32(16, statusOut.first, true);
      view.setUint32(20, statusOut.second, true);
      return access.writeStructField(low, high, 8, 16) ? 0 : -Errno.EFAULT;
    }
    case EvtchnOp.bind_vcpu: {
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      return events.bindVcpu(view.getUint32(0, true), view.getUint32(4, true));
    }
    case EvtchnOp.reset: {
      if (!access.readStruct(low, high, 2)) return -Errno.EFAULT;
      const dom = view.getUint16(0, true);
      if (!isSelf(domain, dom))
        return domain.hypervisor.domain(dom) === undefined ? -Errno.ESRCH : -Errno.EPERM;
      return events.reset();
    }
    default:
      // init_control (FIFO ABI), expand_array, set_priority, bind_pirq: -ENOSYS so Linux uses 2-level.
      return -Errno.ENOSYS;
  }
}

/** Stores a new port in the struct's out field, or passes the error on. */
function writePortOut(
  access: GuestAccess,
  low: number,
  high: number,
  offset: number,
  port: number,
): number {
  if (port < 0) return port;
  access.view.setUint32(offset, port, true);
  return access.writeStructField(low, high, offset, 4) ? 0 : -Errno.EFAULT;
}

// ---- grant_table_op (20) ---------------------------------------------------------------------

function grantTableOp(
  domain: Domain,
  _context: VcpuContext,
  access: GuestAccess,
  args: CallArgs,
): number {
  const rawCmd = args.u32(0);
  const cmd = rawCmd & GNTTABOP_CMD_MASK;
  const low = args.low(1);
  const high = args.high(1);
  const count = args.u32(2);
  const grants = domain.grants;
  if (grants === null) return -Errno.ENOSYS;
  // Xen do_grant_table_op: a negative (int) count, or continuation bits on a cmd that has none
  // (only cache_flush, which Kumo does not offer, uses them), is -EINVAL.
  if (count >= 0x80000000 || rawCmd !== cmd) return -Errno.EINVAL;
  // Batches of more than GRANT_OPS_PER_PREEMPTION elements do that many, then continue.
  const chunk = Math.min(count, GRANT_OPS_PER_PREEMPTION);
  const view = access.view;
  switch (cmd) {
    case GnttabOp.query_size: {
      if (count !== 1) return -Errno.EINVAL;
      if (!access.readStruct(low, high, 16)) return -Errno.EFAULT;
      const dom = view.getUint16(0, true);
      if (!isSelf(domain, dom)) {
        view.setInt16(
          12,
          domain.hypervisor.domain(dom) === undefined
            ? GntStatus.bad_domain
            : GntStatus.permission_denied,
          true,
        );
      } else {
        view.setUint32(4, grants.nrFrames, true);
        view.setUint32(8, grants.maxFrames, true);
        view.setInt16(12, GntStatus.okay, true);
      }
      return access.writeStructField(low, high, 4, 10) ? 0 : -Errno.EFAULT;
    }
    case GnttabOp.setup_table: {
      // Xen gnttab_setup_table, which HVM/PVH guests may call too (hvm_grant_table_op): grow the
      // table to nr_frames and list, per frame, the GFN it is mapped at (add_to_physmap), or
      // INVALID_GFN (all ones) where it is not mapped (the M2P has no entry for it; on arm
      // gnttab_shared_gfn is INVALID_GFN). Struct {dom u16 @0, nr_frames u32 @4, status i16 @8,
      // frame_list handle @16 (x32 @12)}; xen_pfn_t is 8 bytes (x64, a64) or 4 (x32).
      if (count !== 1) return -Errno.EINVAL;
      const wide = access.longMode;
      if (!access.readStruct(low, high, wide ? 24 : 16)) return -Errno.EFAULT;
      const dom = view.getUint16(0, true);
      const nrFrames = view.getUint32(4, true);
      access.handleAt(wide ? 16 : 12, pointer);
      let status: number = GntStatus.okay;
      if (!isSelf(domain, dom)) {
        status =
          domain.hypervisor.domain(dom) === undefined
            ? GntStatus.bad_domain
            : GntStatus.permission_denied;
      } else if (nrFrames > grants.maxFrames || !grants.grow(nrFrames)) {
        status = GntStatus.general_error;
      } else {
        const entrySize = wide ? 8 : 4;
        for (let i = 0; i < nrFrames; i++) {
          const gfn = domain.grantFrameGfns[i] ?? -1;
          if (gfn < 0) {
            extentView.setUint32(0, 0xffffffff, true);
            extentView.setUint32(4, 0xffffffff, true);
          } else {
            extentView.setUint32(0, gfn >>> 0, true);
            extentView.setUint32(4, Math.floor(gfn / TWO_POW_32) >>> 0, true);
          }
          advancePointer(pointer, i * entrySize, element);
          if (!access.writeVirtual(element.low, element.high, extentBytes, 0, entrySize))
            status = GntStatus.bad_virt_addr;
        }
      }
      view.setInt16(8, status, true);
      return access.writeStructField(low, high, 8, 2) ? 0 : -Errno.EFAULT;
    }
    case GnttabOp.set_version: {
      if (count !== 1) return -Errno.EINVAL;
      if (!access.readStruct(low, high, 4)) return -Errno.EFAULT;
      const result = grants.setVersion(view.getUint32(0, true));
      view.setUint32(0, grants.version, true);
      if (!access.writeStructField(low, high, 0, 4)) return -Errno.EFAULT;
      return result;
    }
    case GnttabOp.get_version: {
      if (count !== 1) return -Errno.EINVAL;
      if (!access.readStruct(low, high, 8)) return -Errno.EFAULT;
      const dom = view.getUint16(0, true);
      if (!isSelf(domain, dom))
        return domain.hypervisor.domain(dom) === undefined ? -Errno.ESRCH : -Errno.EPERM;
      view.setUint32(4, grants.version, true);
      return access.writeStructField(low, high, 4, 4) ? 0 : -Errno.EFAULT;
    }
    case GnttabOp.copy: {
      const result = grantCopyOps(domain, access, low, high, chunk);
      return result < 0 ? result : continueGrantOp(args, count, chunk, access.longMode ? 40 : 24);
    }
    case GnttabOp.swap_grant_ref: {
      for (let i = 0; i < chunk; i++) {
        advancePointer({ low, high }, i * 12, element);
        if (!access.readStruct(element.low, element.high, 12)) return -Errno.EFAULT;
        view.setInt16(8, grants.swap(view.getUint32(0, true), view.getUint32(4, true)), true);
        if (!access.writeStructField(element.low, element.high, 8, 2)) return -Errno.EFAULT;
      }
      return continueGrantOp(args, count, chunk, 12);
    }
    case GnttabOp.map_grant_ref: {
      // A PVH/HVM driver domain maps a grant into its own physical space (GNTMAP_host_map with
      // host_addr a guest-physical address; Xen create_grant_p2m_mapping).
      for (let i = 0; i < chunk; i++) {
        advancePointer({ low, high }, i * 32, element);
        if (!access.readStruct(element.low, element.high, 32)) return -Errno.EFAULT;
        const hostAddress = access.u64At(0);
        const flags = view.getUint32(8, true);
        const ref = view.getUint32(12, true);
        const dom = view.getUint16(16, true);
        const handle = guestMapGrant(domain, hostAddress, flags, ref, dom);
        view.setInt16(18, handle < 0 ? handle : GntStatus.okay, true);
        view.setUint32(20, handle < 0 ? 0 : handle, true);
        access.setU64At(24, 0);
        if (!access.writeStructField(element.low, element.high, 18, 14)) return -Errno.EFAULT;
      }
      return continueGrantOp(args, count, chunk, 32);
    }
    case GnttabOp.unmap_grant_ref: {
      for (let i = 0; i < chunk; i++) {
        advancePointer({ low, high }, i * 24, element);
        if (!access.readStruct(element.low, element.high, 24)) return -Errno.EFAULT;
        const status = guestUnmapGrant(domain, access.u64At(0), view.getUint32(16, true));
        view.setInt16(20, status, true);
        if (!access.writeStructField(element.low, element.high, 20, 2)) return -Errno.EFAULT;
      }
      return continueGrantOp(args, count, chunk, 24);
    }
    default:
      // transfer, dump_table, unmap_and_replace, get_status_frames, cache_flush: Xen refuses
      // them to HVM/PVH guests (hvm_grant_table_op: -ENOSYS).
      return -Errno.ENOSYS;
  }
}

/**
 * After `done` of `count` elements of `size` bytes: 0 when all are done, else
 * the arguments become (cmd, uop + done elements, count - done) and the call
 * is preempted (Xen do_grant_table_op: guest_handle_add_offset, then
 * hypercall_create_continuation(grant_table_op, "ihi", cmd, uop, count)).
 */
function continueGrantOp(args: CallArgs, count: number, done: number, size: number): number {
  if (done >= count) return 0;
  advancePointer({ low: args.low(1), high: args.high(1) }, done * size, element);
  args.args[2] = element.low;
  args.args[3] = element.high;
  args.set(2, count - done);
  return PREEMPTED;
}

const copySource: GrantCopySideSpec = {
  isRef: false,
  refOrGfn: 0,
  offset: 0,
  table: undefined,
  memory: undefined,
};
const copyDest: GrantCopySideSpec = {
  isRef: false,
  refOrGfn: 0,
  offset: 0,
  table: undefined,
  memory: undefined,
};

/** GNTTABOP_copy: per-element status; x64/a64 elements are 40 bytes, x32 24 (xen-abi.md 4). */
function grantCopyOps(
  domain: Domain,
  access: GuestAccess,
  low: number,
  high: number,
  count: number,
): number {
  const wide = access.longMode;
  const size = wide ? 40 : 24;
  const sideSize = wide ? 16 : 8;
  const lengthAt = wide ? 32 : 16;
  const view = access.view;
  for (let i = 0; i < count; i++) {
    advancePointer({ low, high }, i * size, element);
    if (!access.readStruct(element.low, element.high, size)) return -Errno.EFAULT;
    const length = view.getUint16(lengthAt, true);
    const flags = view.getUint16(lengthAt + 2, true);
    const status =
      readCopySide(domain, access, 0, (flags & GntCopy.source_gref) !== 0, copySource) ??
      readCopySide(domain, access, sideSize, (flags & GntCopy.dest_gref) !== 0, copyDest) ??
      grantCopy(domain.domid, copySource, copyDest, length);
    view.setInt16(lengthAt + 4, status, true);
    if (!access.writeStructField(element.low, element.high, lengthAt + 4, 2)) return -Errno.EFAULT;
  }
  return 0;
}

/** Fills a copy side from the struct at `offset`; returns a GNTST_* failure or undefined. */
function readCopySide(
  domain: Domain,
  access: GuestAccess,
  offset: number,
  isRef: boolean,
  side: GrantCopySideSpec,
): number | undefined {
  const view = access.view;
  const wide = access.longMode;
  const refOrGfn = wide && !isRef ? access.u64At(offset) : view.getUint32(offset, true);
  const domid = view.getUint16(offset + (wide ? 8 : 4), true);
  side.isRef = isRef;
  side.refOrGfn = refOrGfn;
  side.offset = view.getUint16(offset + (wide ? 10 : 6), true);
  side.table = undefined;
  side.memory = undefined;
  const self = isSelf(domain, domid);
  // Xen gnttab_copy_lock_domains: copy by frame only within DOMID_SELF.
  if (!isRef && !self) return GntStatus.permission_denied;
  const owner = self ? domain : domain.hypervisor.domain(domid);
  if (owner === undefined || owner.state === "destroyed") return GntStatus.bad_domain;
  if (isRef) side.table = owner.grants ?? undefined;
  else side.memory = owner.memory ?? undefined;
  return undefined;
}

// ---- The table (Xen hypercall-defs.c: one row per call) --------------------------------------

const HANDLERS: (Handler | undefined)[] = [];
HANDLERS[Hypercall.memory_op] = memoryOp;
HANDLERS[Hypercall.set_timer_op] = setTimerOp;
HANDLERS[Hypercall.xen_version] = xenVersion;
HANDLERS[Hypercall.console_io] = consoleIo;
HANDLERS[Hypercall.grant_table_op] = grantTableOp;
HANDLERS[Hypercall.vcpu_op] = vcpuOp;
HANDLERS[Hypercall.sched_op] = schedOp;
HANDLERS[Hypercall.event_channel_op] = eventChannelOp;
HANDLERS[Hypercall.hvm_op] = hvmOp;
HANDLERS[Hypercall.vm_assist] = vmAssist;
HANDLERS[Hypercall.physdev_op] = physdevOp;
// multicall, platform_op and every PV-only call: -ENOSYS (xen-abi.md 2.1). Linux 6.1 issues
// multicall only from x86 PV code (arch/x86/xen/multicalls.c) and privcmd (dom0 user space);
// neither a PVH nor an arm64 domU makes one.
HANDLERS.length = 64;

/** Timer expiry for one domain: singleshot and periodic timers raise VIRQ_TIMER; poll timeouts wake. */
export function fireTimers(domain: Domain): void {
  const now = domain.clock.now();
  for (const context of domain.vcpus) {
    if (context.singleshotDeadline <= now) {
      context.singleshotDeadline = Number.POSITIVE_INFINITY;
      domain.events.sendVirq(Virq.TIMER, context.id);
    }
    if (context.periodicDeadline <= now) {
      const period = context.periodicPeriod;
      context.periodicDeadline = period > 0 ? now + period : Number.POSITIVE_INFINITY;
      domain.events.sendVirq(Virq.TIMER, context.id);
    }
    if (context.blocked === BlockReason.Poll && context.pollDeadline <= now) context.wake();
  }
  // Device-model timers (a LAPIC timer): their callbacks raise interrupts and kick vCPUs.
  const timers = domain.deviceTimers;
  for (let i = 0; i < timers.length; i++) timers[i].expire(now);
}

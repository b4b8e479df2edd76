import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ABIS,
  AbiLayoutError,
  abiFromProtocol,
  abiLayouts,
  BlkifStatus,
  HvmStartInfoConst,
  type StructLayout,
} from "../src";

function page(): DataView {
  return new DataView(new ArrayBuffer(4096));
}

/** Scalar members of every struct of every ABI, with the value range of their C type. */
function scalarMembers(): { layout: StructLayout; path: string; min: number; max: number }[] {
  const out: { layout: StructLayout; path: string; min: number; max: number }[] = [];
  for (const abi of ABIS) {
    const layouts = abiLayouts(abi) as unknown as Record<string, StructLayout>;
    for (const name of Object.keys(layouts)) {
      const layout = layouts[name];
      if (typeof layout !== "object" || !("fields" in layout)) continue;
      for (const path of layout.paths) {
        const field = layout.fields[path];
        if (field.compound) continue;
        const bits = field.elementSize * 8;
        const signed = field.type.startsWith("i");
        // Values a number holds exactly: 64-bit members up to 2^53.
        const max =
          bits >= 64 ? Number.MAX_SAFE_INTEGER : signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
        const min = signed ? (bits >= 64 ? Number.MIN_SAFE_INTEGER : -(2 ** (bits - 1))) : 0;
        out.push({ layout, path, min, max });
      }
    }
  }
  return out;
}

describe("layout accessors", () => {
  it("read back every scalar member of every struct exactly as written (property)", () => {
    const members = scalarMembers();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: members.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (index, fraction) => {
          const { layout, path, min, max } = members[index];
          const value = Math.floor(min + fraction * (max - min));
          const buffer = new DataView(new ArrayBuffer(layout.size + 64));
          layout.set(buffer, 32, path, value);
          expect(layout.get(buffer, 32, path)).toBe(value);
          expect(layout.reader(path)(buffer, 32)).toBe(value);
          // Nothing outside the member was touched.
          const field = layout.fields[path];
          const bytes = new Uint8Array(buffer.buffer);
          const start = 32 + field.offset;
          const end = start + field.elementSize;
          const stray = bytes.findIndex((b, i) => b !== 0 && (i < start || i >= end));
          expect(stray).toBe(-1);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("store 64-bit members little-endian as two 32-bit halves", () => {
    const { vcpu_time_info } = abiLayouts("x86_64");
    const view = page();
    vcpu_time_info.set(view, 0, "system_time", 0x12_3456_789a);
    expect(view.getUint32(vcpu_time_info.offsets.system_time, true)).toBe(0x3456_789a);
    expect(view.getUint32(vcpu_time_info.offsets.system_time + 4, true)).toBe(0x12);
  });

  it("move full 64-bit ids losslessly as halves", () => {
    for (const abi of ABIS) {
      const { blkif_request, blkif_response } = abiLayouts(abi);
      const request = page();
      const response = page();
      blkif_request.setHalves(request, 0, "id", 0xdeadbeef, 0xffffffff);
      const halves = new Uint32Array(2);
      blkif_request.getHalves(request, 0, "id", halves);
      blkif_response.setHalves(response, 64, "id", halves[0], halves[1]);
      expect(response.getUint32(64 + blkif_response.offsets.id, true)).toBe(0xdeadbeef);
      expect(response.getUint32(64 + blkif_response.offsets.id + 4, true)).toBe(0xffffffff);
      expect(() => blkif_response.getHalves(response, 0, "status", halves)).toThrow(AbiLayoutError);
    }
  });

  it("type member paths: unknown names do not compile", () => {
    const { blkif_request, vcpu_info } = abiLayouts("x86_64");
    expect(blkif_request.offsets.sector_number).toBeGreaterThan(0);
    expect(vcpu_info.offsets["time.tsc_shift"]).toBeGreaterThan(0);
    // @ts-expect-error: not a member of blkif_request
    expect(blkif_request.offsets.sector).toBeUndefined();
  });

  it("widen signed members: a blkif status of -1 reads back as BLKIF_RSP_ERROR", () => {
    for (const abi of ABIS) {
      const { blkif_response } = abiLayouts(abi);
      const view = page();
      blkif_response.set(view, 0, "status", BlkifStatus.ERROR);
      expect(view.getUint16(blkif_response.offsets.status, true)).toBe(0xffff);
      expect(blkif_response.get(view, 0, "status")).toBe(-1);
    }
  });

  it("size ulong, pfn and handle members per ABI", () => {
    const x32 = abiLayouts("x86_32").xen_add_to_physmap;
    const x64 = abiLayouts("x86_64").xen_add_to_physmap;
    expect(x32.fields.gpfn.size * 2).toBe(x64.fields.gpfn.size);
    const view = page();
    x32.set(view, 0, "gpfn", 0xfeffc);
    expect(view.getUint32(x32.offsets.gpfn, true)).toBe(0xfeffc);
  });

  it("address array elements and nested members", () => {
    const { shared_info, vcpu_info, blkif_request, blkif_request_segment, evtchn_status } =
      abiLayouts("x86_64");
    const view = page();
    shared_info.setAt(view, 0, "evtchn_pending", 3, 0x8000_0000_0001);
    expect(shared_info.getAt(view, 0, "evtchn_pending", 3)).toBe(0x8000_0000_0001);
    const slot = shared_info.offsets.vcpu_info + 2 * shared_info.fields.vcpu_info.elementSize;
    vcpu_info.set(view, slot, "time.version", 7);
    expect(view.getUint32(slot + vcpu_info.offsets["time.version"], true)).toBe(7);
    const seg = blkif_request.offsets.seg + 10 * blkif_request.fields.seg.elementSize;
    blkif_request_segment.set(view, seg, "last_sect", 7);
    expect(view.getUint8(seg + blkif_request_segment.offsets.last_sect)).toBe(7);
    evtchn_status.write(view, 0, { status: 2, "u.interdomain.dom": 1, "u.interdomain.port": 9 });
    expect(evtchn_status.read(view, 0)).toMatchObject({
      status: 2,
      "u.interdomain.dom": 1,
      "u.interdomain.port": 9,
      "u.virq": 1,
    });
  });

  it("read a whole hvm_start_info", () => {
    const { hvm_start_info } = abiLayouts("x86_32");
    const view = page();
    hvm_start_info.write(view, 8, {
      magic: HvmStartInfoConst.MAGIC_VALUE,
      version: 1,
      cmdline_paddr: 0x2000,
      memmap_entries: 3,
    });
    const info = hvm_start_info.read(view, 8);
    expect(info.magic).toBe(HvmStartInfoConst.MAGIC_VALUE);
    expect(info.cmdline_paddr).toBe(0x2000);
    expect(info.memmap_entries).toBe(3);
    expect(info.rsdp_paddr).toBe(0);
  });

  it("answer unknown members, array indexes and ABIs with a typed error", () => {
    const { blkif_request } = abiLayouts("x86_64");
    const view = page();
    expect(() => blkif_request.get(view, 0, "nope" as "id")).toThrow(AbiLayoutError);
    expect(() => blkif_request.get(view, 0, "seg")).toThrow(/not a scalar/);
    expect(() => blkif_request.getAt(view, 0, "seg", 0)).toThrow(AbiLayoutError);
    const { shared_info } = abiLayouts("x86_32");
    expect(() => shared_info.getAt(view, 0, "evtchn_pending", 32)).toThrow(/out of range/);
    expect(() => abiLayouts("mips" as "arm64")).toThrow(/unknown ABI/);
  });

  it("map frontend protocol strings to ABIs and back", () => {
    for (const abi of ABIS) expect(abiFromProtocol(abiLayouts(abi).protocol)).toBe(abi);
    expect(abiFromProtocol("x86_64")).toBeUndefined();
  });
});

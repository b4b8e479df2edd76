import { describe, expect, it } from "vitest";
import { CodeSnapshots } from "../src/code-snapshots";

/** Snapshots over 16 pages of RAM whose drop callback forgets, as the CPU's invalidation does. */
function setup() {
  const ram = new Int32Array(16 * 1024);
  const bytes = new Uint8Array(ram.buffer);
  const checked = new Uint8Array(16);
  const codePage = new Uint8Array(16);
  let epoch = 1;
  const dropped: number[] = [];
  const snapshots: CodeSnapshots = new CodeSnapshots(
    ram,
    checked,
    () => epoch,
    codePage,
    (page) => {
      dropped.push(page);
      snapshots.forget(page);
    },
  );
  return {
    bytes,
    checked,
    codePage,
    dropped,
    snapshots,
    bump: () => {
      epoch++;
    },
  };
}

describe("CodeSnapshots", () => {
  it("keeps a page's blocks while the bytes they cover stay, outside writes included", () => {
    const { bytes, checked, codePage, dropped, snapshots, bump } = setup();
    bytes.fill(0x90, 0x3000, 0x4000);
    const snapshot = snapshots.current(3);
    expect(codePage[3]).toBe(1);
    snapshots.extend(snapshot, 0x3100, 0x3123);
    snapshots.extend(snapshot, 0x3040, 0x3050);
    expect([snapshot.lo, snapshot.hi]).toEqual([0x10, 0x49]);
    bump();
    expect(checked[3]).toBe(1);
    bytes[0x3123 + 4] = 0xcc; // past the last dword the blocks cover
    bytes[0x303f] = 0xcc;
    expect(snapshots.verify(3)).toBe(true);
    expect(checked[3]).toBe(2);
    expect(snapshots.current(3)).toBe(snapshot);
    expect(dropped).toEqual([]);
  });

  it("drops a page whose covered bytes host code replaced, once", () => {
    const { bytes, checked, dropped, snapshots, bump } = setup();
    const snapshot = snapshots.current(5);
    snapshots.extend(snapshot, 0x5ff0, 0x6000);
    bump();
    bytes[0x5fff] = 0xc3;
    expect(snapshots.verify(5)).toBe(false);
    expect(dropped).toEqual([5]);
    expect(checked[5]).toBe(0);
    expect(snapshots.isCurrent(5, snapshot)).toBe(false);
    // Blocks generated now start a new snapshot, from the new bytes.
    const next = snapshots.current(5);
    expect(next).not.toBe(snapshot);
    snapshots.extend(next, 0x5ff0, 0x6000);
    bump();
    expect(snapshots.verify(5)).toBe(true);
  });

  it("checks a page again before generating more of its blocks in a later epoch", () => {
    const { bytes, dropped, snapshots, bump } = setup();
    const snapshot = snapshots.current(2);
    snapshots.extend(snapshot, 0x2000, 0x2010);
    bump();
    bytes[0x2004] = 1;
    const next = snapshots.current(2);
    expect(dropped).toEqual([2]);
    expect(next).not.toBe(snapshot);
  });

  it("checks every page again after the epoch wraps around", () => {
    const { checked, snapshots } = setup();
    snapshots.extend(snapshots.current(1), 0x1000, 0x1004);
    snapshots.extend(snapshots.current(7), 0x7000, 0x7004);
    expect([checked[1], checked[7]]).toEqual([1, 1]);
    snapshots.resetChecks();
    expect([checked[1], checked[7]]).toEqual([0, 0]);
    expect(snapshots.size).toBe(2);
    snapshots.clear();
    expect(snapshots.size).toBe(0);
  });
});

import { expect, it } from "vitest";
import { convertDiskImage, createDiskImage, MemoryByteStore, openDiskImage } from "../src/index";

// The README's first example, verbatim, so that it keeps running.
it("runs the README example", async () => {
  const printed: string[] = [];
  const console = { log: (...parts: unknown[]) => printed.push(parts.join(" ")) };

  // A 64 MiB qcow2 image in memory: write a sector, read it back.
  const store = new MemoryByteStore();
  await createDiskImage(store, { format: "qcow2", size: 64 << 20 });
  const disk = await openDiskImage(store);
  await disk.write(new Uint8Array(512).fill(0x4b), 1 << 20);
  const sector = new Uint8Array(512);
  await disk.read(sector, 1 << 20);
  console.log(disk.format, disk.size, sector[0]); // qcow2 67108864 75

  // Convert it to a dynamic VHD, with progress.
  const vhdStore = new MemoryByteStore();
  await createDiskImage(vhdStore, { format: "vhd", size: disk.size });
  const vhd = await openDiskImage(vhdStore);
  await convertDiskImage(disk, vhd, {
    onProgress: (done, total) => void (done === total && console.log("converted")),
  });
  await vhd.read(sector, 1 << 20);
  console.log(vhd.format, sector[511]); // vhd 75

  expect(printed).toEqual(["qcow2 67108864 75", "converted", "vhd 75"]);
});

import type { IdeDisk } from "../../src/index";

/**
 * `backing` behind reads that stay pending until `release()`: the
 * controller shows BSY meanwhile, which is what the asynchronous-image
 * tests look at (and what a saved state taken then must carry).
 */
export function heldDisk(backing: IdeDisk): { disk: IdeDisk; release(): void } {
  let release: () => void = () => {};
  const disk: IdeDisk = {
    sectors: backing.sectors,
    read: (sector, buffer) =>
      new Promise<void>((resolve) => {
        release = () => {
          backing.read(sector, buffer);
          resolve();
        };
      }),
    write: () => {},
  };
  return { disk, release: () => release() };
}

import { Hypervisor } from "@kumo/hypervisor-core";
import { expect, it } from "vitest";
import { BridgeRegistry, VifBackend } from "../src/index";
import { addVifDevice, MemoryXenstore, SimulatedNetfront } from "../src/test/index";

// The README example, verbatim apart from the console capture, so that it keeps running.
it("runs the README example", async () => {
  const printed: string[] = [];
  const console = { log: (...parts: unknown[]) => printed.push(parts.map(String).join(" ")) };

  const hypervisor = new Hypervisor();
  const store = new MemoryXenstore(); // or a @kumo/xenstore XenstoreClient connected as dom0
  const bridges = new BridgeRegistry();

  // Two guests with one vif each on bridge "xenbr0" (the toolstack's job in real use).
  const guests = [];
  for (const [name, mac] of [
    ["a", "00:16:3e:00:00:0a"],
    ["b", "00:16:3e:00:00:0b"],
  ]) {
    const domain = hypervisor.createDomain({ name, memory: 8 << 20, vcpus: 1 });
    addVifDevice(store, { domid: domain.domid, mac, bridge: "xenbr0" });
    await VifBackend.start({
      host: hypervisor.host,
      store,
      domid: domain.domid,
      devid: 0,
      bridge: bridges.get("xenbr0"),
    });
    const front = new SimulatedNetfront({ domain, xenstore: store });
    await front.connect(); // backend state 4
    guests.push(front);
  }

  // A host program on the same bridge.
  const host = bridges.get("xenbr0").openHostPort();
  host.onFrame((frame) => console.log(`host got ${frame.data.length} bytes`));

  // Guest a broadcasts a 64-byte frame: guest b and the host port both receive it.
  const frame = new Uint8Array(64).fill(0xff, 0, 6);
  frame.set([0x00, 0x16, 0x3e, 0x00, 0x00, 0x0a], 6);
  guests[0].send(frame);
  await new Promise((resolve) => setTimeout(resolve, 10));
  console.log(guests[1].poll().map((received) => received.data.length)); // [ 64 ]

  expect(printed).toEqual(["host got 64 bytes", "64"]);
});

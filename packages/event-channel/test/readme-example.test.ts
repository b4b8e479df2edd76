import {
  CallbackEvents,
  EventChannelBus,
  TWO_LEVEL_LAYOUTS,
  TwoLevelEvents,
} from "@kumo/event-channel";
import { expect, it } from "vitest";

// The README example, verbatim, so that it keeps running.
it("runs the README example", async () => {
  const printed: string[] = [];
  const console = { log: (...parts: unknown[]) => printed.push(parts.join(" ")) };

  const bus = new EventChannelBus();
  const sharedInfo = new Uint8Array(4096);
  const guestSink = new TwoLevelEvents(sharedInfo, TWO_LEVEL_LAYOUTS.x64, 1, (vcpu) =>
    console.log("upcall on vcpu", vcpu),
  );
  guestSink.setVcpuInfo(0, sharedInfo, 0); // vcpu_info[0] inside shared_info
  const guest = bus.create(1, { vcpuCount: 1, maxPorts: 1024, sink: guestSink });

  const host = new CallbackEvents(1024);
  const dom0 = bus.create(0, { vcpuCount: 0, maxPorts: 1024, sink: host });

  const guestPort = guest.allocUnbound(0); // the guest offers a port to domain 0
  const hostPort = dom0.bindInterdomain(1, guestPort); // the backend binds it
  host.setHandler(hostPort, (port) => console.log("guest notified port", port));
  guest.send(guestPort); // handler runs on the next microtask
  dom0.send(hostPort); // "upcall on vcpu 0"

  await Promise.resolve();
  expect(printed).toEqual(["upcall on vcpu 0", "guest notified port 1"]);
});

import { DomId, EvtchnOp, Hypercall, SchedOp, XenVersionOp } from "@kumo/abi";
import { type EventChannelInterruptController, Hypervisor } from "@kumo/hypervisor-core";
import { halt, hypercall, ScriptedVcpu } from "@kumo/hypervisor-core/test";
import type { ArrayBufferGuestMemory } from "@kumo/mmu";
import { expect, it } from "vitest";

// The README example, verbatim, so that it keeps running.
it("runs the README example", async () => {
  const printed: string[] = [];
  const console = { log: (...parts: unknown[]) => printed.push(parts.join(" ")) };

  const hypervisor = new Hypervisor();
  hypervisor.onLog((line) => console.log(line));
  const domain = hypervisor.createDomain({ name: "demo", memory: 16 << 20, vcpus: 1 });
  const memory = domain.memory as ArrayBufferGuestMemory;

  // A "guest": ask the version, offer a port to domain 0, tell dom0, power off.
  const cpu = new ScriptedVcpu({
    program: function* () {
      const version = yield hypercall(Hypercall.xen_version, XenVersionOp.version, 0);
      console.log(`Xen ${version >> 16}.${version & 0xffff}`); // Xen 4.17
      memory.write16(0x1000, DomId.SELF); // evtchn_alloc_unbound { dom, remote_dom, port }
      memory.write16(0x1002, 0);
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.alloc_unbound, 0x1000);
      const port = memory.read32(0x1004);
      // Spin like a frontend waiting for its backend (a real one waits on xenstore).
      while (domain.events.peerOf(port) === null)
        yield hypercall(Hypercall.sched_op, SchedOp.yield, 0);
      memory.write32(0x2000, port); // evtchn_send { port }
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.send, 0x2000);
      memory.write32(0x3000, 0); // sched_shutdown { reason: poweroff }
      yield hypercall(Hypercall.sched_op, SchedOp.shutdown, 0x3000);
    },
  });
  domain.attachVcpu(0, cpu);

  // Domain 0's backend binds the guest's port once it exists.
  const events = hypervisor.host.openEventChannel();
  hypervisor.onDomainEvent((event) => console.log(event.kind, event.domid));
  domain.unpause();
  hypervisor.scheduler.runUntil(() => domain.events.stateOf(1) === 1);
  events.bindInterdomain(domain.domid, 1, (port) => console.log("notified on dom0 port", port));
  await hypervisor.run(); // returns once no guest is left: "shutdown 1", "destroyed 1"

  expect(printed).toContain("Xen 4.17");
  expect(printed.some((line) => line.startsWith("notified on dom0 port"))).toBe(true);
  expect(printed).toContain("destroyed 1");
});

it("runs the README's device-model example", () => {
  const printed: string[] = [];
  const console = { log: (...parts: unknown[]) => printed.push(parts.join(" ")) };

  const hypervisor = new Hypervisor();
  const domain = hypervisor.createDomain({
    name: "arm",
    memory: 4 << 20,
    vcpus: 1,
    architecture: "arm64",
  });
  const memory = domain.memory as ArrayBufferGuestMemory;
  const argument = memory.ram.base + 0x1000;

  // A GIC model: the core asserts the event-channel PPI (31) on it.
  const gic: EventChannelInterruptController = {
    assertPpi: (vcpuId, intid) => console.log(`PPI ${intid} on vCPU ${vcpuId}`),
  };
  // A device timer (say the arm generic timer) on the domain's clock: it raises an event.
  let port = 0;
  const timer = domain.createTimer(() => domain.events.send(port));

  const cpu = new ScriptedVcpu({
    architecture: "arm64",
    addressLimit: 2 ** 40,
    program: function* () {
      memory.write32(argument, 0); // evtchn_bind_ipi { vcpu: 0 }
      yield hypercall(Hypercall.event_channel_op, EvtchnOp.bind_ipi, argument);
      port = memory.read32(argument + 4);
      timer.set(domain.clock.now() + 1_000_000); // 1 ms of guest time
      yield halt(); // wfi: the clock skips to the timer, which sends: "PPI 31 on vCPU 0" (twice:
      // once at the send, once as the vCPU is scheduled in with the upcall still pending)
      console.log(`woke at ${domain.clock.now()} ns, line level ${domain.eventLineLevel(0)}`);
    },
  });
  domain.attachVcpu(0, cpu, { interruptController: gic });
  domain.unpause();
  hypervisor.scheduler.runUntil(() => cpu.finished);

  expect(printed.slice(0, 2)).toEqual(["PPI 31 on vCPU 0", "PPI 31 on vCPU 0"]);
  expect(printed[2]).toMatch(/^woke at 100000\d ns, line level true$/);
});

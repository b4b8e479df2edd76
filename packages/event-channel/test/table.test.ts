import { DomId, Errno, EvtchnStatus, Virq } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { CallbackEvents, EventChannelBus, TWO_LEVEL_LAYOUTS, TwoLevelEvents } from "../src/index";

function guest(bus: EventChannelBus, domid: number, vcpus = 2) {
  const shared = new Uint8Array(4096);
  const kicks: number[] = [];
  const polls: number[] = [];
  const sink = new TwoLevelEvents(
    shared,
    TWO_LEVEL_LAYOUTS.x64,
    vcpus,
    (vcpu) => kicks.push(vcpu),
    (port) => polls.push(port),
  );
  for (let vcpu = 0; vcpu < vcpus; vcpu++) sink.setVcpuInfo(vcpu, shared, vcpu * 64);
  const table = bus.create(domid, { vcpuCount: vcpus, maxPorts: 4096, sink });
  return { shared, kicks, polls, sink, table };
}

describe("event-channel table", () => {
  it("allocates the lowest free port from 1 and answers ENOSPC at the limit", () => {
    const bus = new EventChannelBus();
    const sink = new CallbackEvents(4);
    const table = bus.create(1, { vcpuCount: 1, maxPorts: 4, sink });
    expect(table.allocUnbound(0)).toBe(1);
    expect(table.allocUnbound(0)).toBe(2);
    expect(table.allocUnbound(0)).toBe(3);
    expect(table.allocUnbound(0)).toBe(-Errno.ENOSPC);
    expect(table.close(2)).toBe(0);
    expect(table.allocUnbound(0)).toBe(2);
  });

  it("binds interdomain only to an unbound port that accepts the caller, and sets the new port pending", () => {
    const bus = new EventChannelBus();
    const a = guest(bus, 1);
    const b = guest(bus, 2);
    const c = guest(bus, 3);
    const unbound = a.table.allocUnbound(2);
    expect(c.table.bindInterdomain(1, unbound)).toBe(-Errno.EINVAL);
    expect(b.table.bindInterdomain(9, unbound)).toBe(-Errno.ESRCH);
    expect(b.table.bindInterdomain(1, 4095)).toBe(-Errno.EINVAL);
    expect(b.table.bindInterdomain(1, 5000)).toBe(-Errno.EINVAL);
    const local = b.table.bindInterdomain(1, unbound);
    expect(local).toBe(1);
    expect(b.sink.isPending(local)).toBe(true);
    expect(b.table.peerOf(local)).toEqual({ domid: 1, port: unbound });
    expect(a.table.peerOf(unbound)).toEqual({ domid: 2, port: local });
    expect(b.table.bindInterdomain(1, unbound)).toBe(-Errno.EINVAL);
  });

  it("send on an interdomain port raises the peer's port and upcall; masked ports only set pending", () => {
    const bus = new EventChannelBus();
    const a = guest(bus, 1);
    const b = guest(bus, 2);
    const portA = a.table.allocUnbound(2);
    const portB = b.table.bindInterdomain(1, portA);
    expect(b.table.send(portB)).toBe(0);
    expect(a.sink.isPending(portA)).toBe(true);
    expect(a.shared[0]).toBe(1); // vcpu_info[0].evtchn_upcall_pending
    expect(a.shared[8] & 1).toBe(1); // selector word 0
    expect(a.kicks).toEqual([0]);
    // A masked port: pending only, no new kick; unmask then delivers.
    a.sink.clearPending(portA);
    a.shared[0] = 0;
    a.shared[8] = 0;
    a.shared[2560] |= 1 << portA;
    b.table.send(portB);
    expect(a.sink.isPending(portA)).toBe(true);
    expect(a.kicks).toEqual([0]);
    expect(a.polls).toContain(portA);
    a.table.unmask(portA);
    expect(a.kicks).toEqual([0, 0]);
    expect(a.shared[0]).toBe(1);
  });

  it("close of an interdomain port returns the peer to unbound for the same domain", () => {
    const bus = new EventChannelBus();
    const a = guest(bus, 1);
    const b = guest(bus, 2);
    const portA = a.table.allocUnbound(2);
    const portB = b.table.bindInterdomain(1, portA);
    expect(b.table.close(portB)).toBe(0);
    const status = { status: 0, vcpu: 0, first: 0, second: 0 };
    a.table.status(portA, status);
    expect(status).toEqual({ status: EvtchnStatus.unbound, vcpu: 0, first: 2, second: 0 });
    expect(a.table.send(portA)).toBe(0);
    expect(b.table.close(portB)).toBe(-Errno.EINVAL);
    expect(b.table.close(0)).toBe(-Errno.EINVAL);
    expect(b.table.bindInterdomain(1, portA)).toBe(portB);
  });

  it("binds per-vCPU VIRQs once per vCPU and global VIRQs only on vCPU 0", () => {
    const bus = new EventChannelBus();
    const a = guest(bus, 1);
    const t0 = a.table.bindVirq(Virq.TIMER, 0);
    const t1 = a.table.bindVirq(Virq.TIMER, 1);
    expect(t0).toBeGreaterThan(0);
    expect(t1).toBeGreaterThan(t0);
    expect(a.table.bindVirq(Virq.TIMER, 1)).toBe(-Errno.EEXIST);
    expect(a.table.bindVirq(Virq.TIMER, 2)).toBe(-Errno.ENOENT);
    expect(a.table.bindVirq(24, 0)).toBe(-Errno.EINVAL);
    expect(a.table.bindVirq(Virq.CONSOLE, 1)).toBe(-Errno.EINVAL);
    a.table.sendVirq(Virq.TIMER, 1);
    expect(a.kicks).toEqual([1]);
    expect(a.table.bindVcpu(t1, 0)).toBe(-Errno.EINVAL);
    const console = a.table.bindVirq(Virq.CONSOLE, 0);
    expect(a.table.bindVcpu(console, 1)).toBe(0);
    a.table.sendVirq(Virq.CONSOLE, 0);
    expect(a.kicks).toEqual([1]); // vCPU 1's upcall is already pending: no second kick
    expect(a.table.close(t1)).toBe(0);
    expect(a.table.bindVirq(Virq.TIMER, 1)).toBe(t1);
  });

  it("IPIs notify their vCPU; send on a VIRQ port is EINVAL", () => {
    const bus = new EventChannelBus();
    const a = guest(bus, 1);
    const ipi = a.table.bindIpi(1);
    expect(a.table.bindIpi(7)).toBe(-Errno.ENOENT);
    expect(a.table.send(ipi)).toBe(0);
    expect(a.kicks).toEqual([1]);
    const virq = a.table.bindVirq(Virq.DEBUG, 0);
    expect(a.table.send(virq)).toBe(-Errno.EINVAL);
    expect(a.table.send(-1)).toBe(-Errno.EINVAL);
    expect(a.table.send(1.5)).toBe(-Errno.EINVAL);
  });

  it("DOMID_SELF loops back; reset closes everything and frees peers", () => {
    const bus = new EventChannelBus();
    const a = guest(bus, 1);
    const b = guest(bus, 2);
    const self = a.table.allocUnbound(DomId.SELF);
    const loop = a.table.bindInterdomain(DomId.SELF, self);
    expect(loop).toBeGreaterThan(0);
    const portB = b.table.allocUnbound(1);
    a.table.bindInterdomain(2, portB);
    expect(a.table.reset()).toBe(0);
    expect(a.table.portsInUse()).toBe(0);
    expect(b.table.stateOf(portB)).toBe(EvtchnStatus.unbound);
    bus.destroy(2);
    expect(a.table.bindInterdomain(2, portB)).toBe(-Errno.ESRCH);
  });

  it("delivers host-side notifications on the event loop, coalesced", async () => {
    const bus = new EventChannelBus();
    const host = new CallbackEvents(16);
    const dom0 = bus.create(0, { vcpuCount: 0, maxPorts: 16, sink: host });
    const a = guest(bus, 1);
    const guestPort = a.table.allocUnbound(0);
    const hostPort = dom0.bindInterdomain(1, guestPort);
    const seen: number[] = [];
    host.setHandler(hostPort, (port) => seen.push(port));
    await Promise.resolve();
    seen.length = 0;
    a.table.send(guestPort);
    a.table.send(guestPort);
    expect(seen).toEqual([]);
    await Promise.resolve();
    expect(seen).toEqual([hostPort]);
  });
});

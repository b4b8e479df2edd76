/**
 * The ring wired through `@kumo/hypervisor-core`'s host interface, as the toolstack will do it:
 * XS_INTRODUCE maps the guest's store frame (libxenforeignmemory) and binds its unbound store
 * port (libxenevtchn); the guest's EVTCHNOP_send wakes the daemon.
 */
import { Hypervisor } from "@kumo/hypervisor-core";
import { describe, expect, it } from "vitest";
import { connectLocal, introduceThrough, Xenstored } from "../src";
import { XenbusFrontend } from "../src/test";

const STORE_GFN = 0x10;
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("guest ring through the hypervisor's host interface", () => {
  it("introduces a domain, serves its requests, and closes the port on release", async () => {
    const hypervisor = new Hypervisor();
    const domain = hypervisor.createDomain({ name: "guest", memory: 1 << 20, vcpus: 1 });
    // The domain builder allocates the store port for dom0 (HVM_PARAM_STORE_EVTCHN).
    const guestPort = domain.events.allocUnbound(0);
    expect(guestPort).toBeGreaterThan(0);
    const daemon: Xenstored = new Xenstored({
      onIntroduce: introduceThrough(hypervisor.host, () => daemon),
    });
    const dom0 = connectLocal(daemon);
    await dom0.mkdir(`/local/domain/${domain.domid}`);
    await dom0.setPermissions(`/local/domain/${domain.domid}`, [`n${domain.domid}`]);
    await dom0.introduce(domain.domid, STORE_GFN, guestPort);
    expect(domain.events.peerOf(guestPort)).toMatchObject({ domid: 0 });

    // The guest side: Linux's xenbus on the same frame, notifying with EVTCHNOP_send.
    const page = domain.memory!.frame(STORE_GFN)!;
    const frontend = new XenbusFrontend(page, () => {
      expect(domain.events.send(guestPort)).toBe(0);
    });
    const reply = frontend.write("data/hello", "from the guest");
    for (let spin = 0; spin < 100 && frontend.stats.bytesRead === 0; spin++) {
      await settle();
      frontend.onEvent(); // the guest's upcall handler: read replies
    }
    await reply;
    expect(await dom0.read(`/local/domain/${domain.domid}/data/hello`)).toBe("from the guest");

    // Bad introductions are refused, not thrown at the caller's connection.
    await expect(dom0.introduce(99, STORE_GFN, 1)).rejects.toMatchObject({ code: "EINVAL" });

    await dom0.release(domain.domid);
    expect(domain.events.peerOf(guestPort)).toBeNull();
  });
});

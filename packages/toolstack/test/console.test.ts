import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { HostInterface } from "@kumo/hypervisor-core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConsoleBackend, hostConsoleChannel, XenconsLayout } from "../src/index";
import {
  attachTerminal,
  CONSOLE_ESCAPE,
  consoleLogPath,
  logConsoleToFile,
} from "../src/node/index";
import { createLoopbackConsole, SimulatedHvcFrontend } from "../src/test/index";
import { linuxXenHeaderDir, runC } from "./support/oracles";

function setup() {
  const loopback = createLoopbackConsole();
  const backend = new ConsoleBackend(loopback.backend);
  const frontend = new SimulatedHvcFrontend(loopback);
  const output: number[] = [];
  backend.onOutput((bytes) => output.push(...bytes));
  const text = () => new TextDecoder().decode(new Uint8Array(output));
  return { loopback, backend, frontend, output, text };
}

describe("console ring layout", () => {
  it("matches struct xencons_interface in Linux's io/console.h", () => {
    const headers = linuxXenHeaderDir();
    const report = runC(
      "console-layout",
      `#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "${headers}/io/console.h"
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu\\n",
    offsetof(struct xencons_interface, in), sizeof(((struct xencons_interface *)0)->in),
    offsetof(struct xencons_interface, out), sizeof(((struct xencons_interface *)0)->out),
    offsetof(struct xencons_interface, in_cons), offsetof(struct xencons_interface, in_prod),
    offsetof(struct xencons_interface, out_cons), offsetof(struct xencons_interface, out_prod),
    sizeof(struct xencons_interface));
  return 0;
}
`,
    );
    const l = XenconsLayout;
    // Linux 6.1's struct ends at out_prod (newer Xen headers add fields after it).
    expect(report.trim()).toBe(
      [l.in, l.inSize, l.out, l.outSize, l.inCons, l.inProd, l.outCons, l.outProd, l.size].join(
        " ",
      ),
    );
  });
});

describe("console backend with an hvc_xen frontend", () => {
  it("passes guest output to listeners and consumes the ring", async () => {
    const { loopback, frontend, text } = setup();
    await frontend.write("Linux version 6.1\n");
    await loopback.settle();
    expect(text()).toBe("Linux version 6.1\n");
    const view = new DataView(loopback.page.buffer);
    expect(view.getUint32(XenconsLayout.outCons, true)).toBe(
      view.getUint32(XenconsLayout.outProd, true),
    );
    expect(loopback.counts.toFrontend).toBeGreaterThan(0);
  });

  it("delivers a write larger than the ring, the frontend yielding while it is full", async () => {
    const { loopback, frontend, output } = setup();
    const big = new Uint8Array(10_000).map((_, i) => (i * 31) & 0xff);
    await frontend.write(big);
    await loopback.settle();
    expect(new Uint8Array(output)).toEqual(big);
    expect(frontend.yields).toBeGreaterThan(0);
  });

  it("sends keyboard input, holding what does not fit until the guest reads", async () => {
    const { loopback, backend, frontend } = setup();
    const input = new Uint8Array(3000).map((_, i) => 0x20 + (i % 90));
    backend.write(input);
    for (let i = 0; i < 10; i++) await loopback.settle();
    expect(new Uint8Array(frontend.received)).toEqual(input);
  });

  it("handles indices that wrap around 2^32", async () => {
    const { loopback, backend, frontend, text } = setup();
    frontend.setIndices({
      inCons: 0xfffffffa,
      inProd: 0xfffffffa,
      outCons: 0xfffffff0,
      outProd: 0xfffffff0,
    });
    await frontend.write("wrapping around the end of the index space\n");
    backend.write("echo $((6*7))\n");
    for (let i = 0; i < 4; i++) await loopback.settle();
    expect(text()).toBe("wrapping around the end of the index space\n");
    expect(new TextDecoder().decode(new Uint8Array(frontend.received))).toBe("echo $((6*7))\n");
  });

  it("stops serving a guest whose producer overruns the ring, without throwing", async () => {
    const { loopback, backend, frontend, output } = setup();
    frontend.setIndices({ outCons: 0, outProd: 5000 });
    loopback.notifyBackend();
    await loopback.settle();
    expect(output).toEqual([]);
    expect(backend.broken).toMatch(/overflow/);
    backend.write("ignored");
    expect(backend.state()).toMatchObject({ broken: true, pendingInput: [] });
  });

  it("leaves corrupt input indices alone until it has input, then stops serving", async () => {
    const { loopback, backend, frontend } = setup();
    frontend.setIndices({ inCons: 0, inProd: 0x0100_0000 });
    loopback.notifyBackend();
    await loopback.settle();
    expect(backend.broken).toBeUndefined();
    backend.write("ls\n");
    expect(backend.broken).toMatch(/corrupt/);
    const view = new DataView(loopback.page.buffer);
    expect(view.getUint32(XenconsLayout.inProd, true)).toBe(0x0100_0000);
  });

  it("never throws and never reads more than a ring for any page contents (property)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 4 }),
        (page, inputs) => {
          const channel = { page, notify() {}, onNotify() {} };
          const view = new DataView(page.buffer);
          const guestInProd = view.getUint32(XenconsLayout.inProd, true);
          const backend = new ConsoleBackend(channel);
          let total = 0;
          backend.onOutput((bytes) => {
            total += bytes.length;
          });
          backend.service();
          for (const input of inputs) backend.write(input);
          backend.service();
          expect(total).toBeLessThanOrEqual(XenconsLayout.outSize);
          // The guest's own indices may be garbage; what the backend publishes never is.
          const inProd = view.getUint32(XenconsLayout.inProd, true);
          const used = (inProd - view.getUint32(XenconsLayout.inCons, true)) >>> 0;
          if (inProd !== guestInProd) expect(used).toBeLessThanOrEqual(XenconsLayout.inSize);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("saves and restores pending input", () => {
    const { loopback, backend } = setup();
    new DataView(loopback.page.buffer).setUint32(XenconsLayout.inProd, 1024, true); // ring full
    backend.write("abc");
    const state = backend.state();
    expect(state).toEqual({
      kind: "kumo.console-backend",
      version: 1,
      pendingInput: [97, 98, 99],
      broken: false,
    });
    const again = new ConsoleBackend(createLoopbackConsole().backend);
    again.restoreState(JSON.parse(JSON.stringify(state)));
    expect(again.state()).toEqual(state);
  });
});

describe("console log and terminal", () => {
  it("appends the guest's output to a per-domain log file", async () => {
    const { loopback, backend, frontend } = setup();
    const dir = mkdtempSync(join(tmpdir(), "kumo-console-"));
    const path = consoleLogPath("guest1", { KUMO_STATE_DIR: dir });
    expect(path).toBe(join(dir, "console", "guest-guest1.log"));
    const log = logConsoleToFile(backend, path);
    await frontend.write("first line\n");
    await loopback.settle();
    await frontend.write("second line\n");
    await loopback.settle();
    log.close();
    expect(readFileSync(path, "utf8")).toBe("first line\nsecond line\n");
  });

  it("attaches a raw terminal and detaches on Ctrl-]", async () => {
    const { loopback, backend, frontend } = setup();
    const input = Object.assign(new PassThrough(), {
      isTTY: true,
      isRaw: false,
      modes: [] as boolean[],
      setRawMode(mode: boolean) {
        this.modes.push(mode);
        this.isRaw = mode;
        return this;
      },
    });
    const screen = new PassThrough();
    const shown: Buffer[] = [];
    screen.on("data", (chunk: Buffer) => shown.push(chunk));
    const attachment = attachTerminal(backend, input, screen);
    await frontend.write("/ # ");
    await loopback.settle();
    input.write("uname -m\r");
    input.write(Buffer.from([0x6c, 0x73, CONSOLE_ESCAPE, 0x71]));
    expect(await attachment.done).toBe("escape");
    for (let i = 0; i < 4; i++) await loopback.settle();
    expect(Buffer.concat(shown).toString()).toBe("/ # ");
    expect(new TextDecoder().decode(new Uint8Array(frontend.received))).toBe("uname -m\rls");
    expect(input.modes).toEqual([true, false]);
    // After detaching, output no longer reaches the terminal.
    await frontend.write("more");
    await loopback.settle();
    expect(Buffer.concat(shown).toString()).toBe("/ # ");
  });

  it("detaches when the input ends", async () => {
    const { backend } = setup();
    const input = new PassThrough();
    const attachment = attachTerminal(backend, input, new PassThrough());
    input.end();
    expect(await attachment.done).toBe("input-ended");
  });
});

describe("host console channel", () => {
  it("maps the ring frame and binds the guest's console port as xenconsoled does", () => {
    const page = new Uint8Array(4096);
    const calls: string[] = [];
    let upcall: (port: number) => void = () => {};
    const host = {
      foreignMemory: {
        mapFrame(domid: number, gfn: number) {
          calls.push(`map ${domid} ${gfn.toString(16)}`);
          return page;
        },
      },
      openEventChannel() {
        return {
          bindInterdomain(domid: number, port: number, handler: (port: number) => void) {
            calls.push(`bind ${domid} ${port}`);
            upcall = handler;
            return 7;
          },
          notify(port: number) {
            calls.push(`notify ${port}`);
          },
          close() {
            calls.push("close");
          },
        };
      },
    } as unknown as HostInterface;
    const channel = hostConsoleChannel(host, 3, 0xfefff, 2);
    const backend = new ConsoleBackend(channel);
    const seen: string[] = [];
    backend.onOutput((bytes) => seen.push(new TextDecoder().decode(bytes)));
    page.set(new TextEncoder().encode("hi"), XenconsLayout.out);
    new DataView(page.buffer).setUint32(XenconsLayout.outProd, 2, true);
    upcall(7);
    backend.close();
    expect(seen).toEqual(["hi"]);
    expect(calls).toEqual(["map 3 fefff", "bind 3 2", "notify 7", "close"]);
  });
});

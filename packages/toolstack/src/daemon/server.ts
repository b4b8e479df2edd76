/**
 * `kumo daemon`: hosts domains in the background, as xl's background
 * process plus xenconsoled and xenstored do, and serves the other `kumo`
 * commands on a Unix socket (protocol.ts). One hypervisor, one xenstore,
 * any number of domains, each with its console backend and log file.
 */
import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { resolve } from "node:path";
import { Hypervisor, type ShutdownReasonName } from "@kumo/hypervisor-core";
import { BridgeRegistry } from "@kumo/netback";
import { connectLocal, type XenstoreClient, Xenstored } from "@kumo/xenstore";
import { Arm64SpecialPages, createArm64Domain, type RunnableArm64Domain } from "../arm64/domain";
import { isArm64Image } from "../arm64/image";
import type { DomainDevices } from "../backends/devices";
import { unpackKernelImage } from "../builder/kernel-image";
import { type DomainConfig, parseDomainConfig } from "../config/domain-config";
import { parseHvmOptions } from "../config/hvm-options";
import { type ConsoleLog, consoleLogPath, logConsoleToFile } from "../node/console-log";
import { attachConfiguredDevices } from "../node/devices";
import { createHostedHvmDomain, type HostedHvmDomain } from "../node/hvm-host";
import { type IdeDevices, pvDisksOf, sharedImageOpener } from "../node/ide-disk";
import type { PortFiles } from "../node/port-files";
import type { RunnableHvmDomain } from "../runner/hvm-domain";
import { createPvhDomain, type RunnablePvhDomain } from "../runner/pvh-domain";
import { introduceDomain } from "../runner/xenstore";
import {
  type DaemonRequest,
  type DaemonResponse,
  type DomainListEntry,
  decodeJson,
  encodeFrame,
  encodeJson,
  FrameDecoder,
  FrameType,
  ProtocolError,
} from "./protocol";

interface HostedDomain {
  readonly config: DomainConfig;
  /** The create request, kept to restart the domain (xl.cfg restart actions). */
  readonly request: CreateRequest;
  readonly restarts: number;
  restart: boolean;
  readonly runnable: RunnablePvhDomain | RunnableHvmDomain | RunnableArm64Domain;
  readonly log: ConsoleLog;
  /** Console connections to tell when the domain ends, or to move to its restarted successor. */
  readonly consoles: Set<ConsoleSession>;
  endReason: ShutdownReasonName | "destroyed" | undefined;
  /** The disk and vif backends, once started. */
  devices?: DomainDevices;
}

export interface KumoDaemonOptions {
  /** Environment for state paths (console logs). */
  readonly env?: NodeJS.ProcessEnv;
  /** "virtual" makes runs reproducible (tests); default "wall". */
  readonly clock?: "wall" | "virtual";
}

/** One attached `kumo console` (or `create -c`) connection. */
interface ConsoleSession {
  /** The domain is gone for good: send the reason and close. */
  end(reason: string): void;
  /** The domain was restarted (xl.cfg restart action): go on with the new one, as xl's console autoconnect does. */
  follow(next: HostedDomain): void;
}

class RequestError extends Error {}

type CreateRequest = Extract<DaemonRequest, { command: "create" }>;

/** Restarts in a row before the daemon gives up on a domain that keeps ending (xl has the same guard). */
const MAX_RESTARTS = 50;

export class KumoDaemon {
  readonly hypervisor = new Hypervisor();
  readonly xenstored = new Xenstored();
  /** The virtual bridges named by vif= entries, shared by all domains of this daemon. */
  readonly bridges = new BridgeRegistry();
  private readonly store: XenstoreClient;
  private readonly domains = new Map<number, HostedDomain>();
  private running: Promise<void> | null = null;
  private server: Server | null = null;
  private socketPath = "";

  constructor(private readonly options: KumoDaemonOptions = {}) {
    this.store = connectLocal(this.xenstored);
    this.hypervisor.onDomainEvent((event) => {
      const hosted = this.domains.get(event.domid);
      if (hosted === undefined) return;
      if (event.kind === "shutdown") {
        hosted.runnable.console.service();
        hosted.endReason ??= event.reason;
        hosted.restart = event.action === "restart";
        // The consoles stay for the restart (moved to the new domain once it exists).
        if (hosted.restart && hosted.restarts < MAX_RESTARTS) return;
      } else if (event.kind === "destroyed") {
        hosted.runnable.console.service();
        hosted.endReason ??= "destroyed";
        const released = this.forget(event.domid);
        if (hosted.restart && hosted.restarts < MAX_RESTARTS) {
          this.hypervisor.log(`restarting "${hosted.config.name}" after ${hosted.endReason}`);
          const consoles = [...hosted.consoles];
          hosted.consoles.clear();
          const reason = hosted.endReason;
          // The disk images are closed before the new domain opens them again.
          released
            // Paused until the consoles follow, so that they miss none of the new boot's output.
            .then(() => this.create({ ...hosted.request, paused: true }, hosted.restarts + 1))
            .then((response) => {
              const { domid } = (response as { result: { domid: number } }).result;
              const next = this.domains.get(domid);
              for (const session of consoles) {
                if (next) session.follow(next);
                else session.end(reason);
              }
              next?.runnable.domain.unpause();
              this.ensureRunning();
            })
            .catch((error: Error) => {
              this.hypervisor.log(`restarting "${hosted.config.name}" failed: ${error.message}`);
              for (const session of consoles) session.end(reason);
            });
          return;
        }
      } else {
        return;
      }
      for (const session of hosted.consoles) session.end(hosted.endReason);
      hosted.consoles.clear();
    });
  }

  /** Listens on `path`, replacing a stale socket left by a daemon that died. */
  async listen(path: string): Promise<void> {
    if (existsSync(path)) {
      const alive = await new Promise<boolean>((done) => {
        const probe = createConnection(path);
        probe.once("connect", () => {
          probe.destroy();
          done(true);
        });
        probe.once("error", () => done(false));
      });
      if (alive) throw new Error(`a kumo daemon is already listening on ${path}`);
      unlinkSync(path);
    }
    this.socketPath = path;
    const server = createServer((socket) => this.serve(socket));
    this.server = server;
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(path, () => done());
    });
  }

  /** Stops serving, destroys every domain and removes the socket. */
  async close(): Promise<void> {
    for (const domid of [...this.domains.keys()]) this.hypervisor.destroyDomain(domid);
    this.hypervisor.stop();
    await this.running;
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((done) => server.close(() => done()));
    if (this.socketPath && existsSync(this.socketPath)) unlinkSync(this.socketPath);
  }

  private forget(domid: number): Promise<void> {
    const hosted = this.domains.get(domid);
    if (hosted === undefined) return Promise.resolve();
    this.domains.delete(domid);
    hosted.log.close();
    hosted.runnable.console.close();
    if ("platform" in hosted.runnable) hosted.runnable.platform.close();
    (hosted.runnable as { readonly portFiles?: PortFiles }).portFiles?.close();
    this.xenstored.releaseDomain(domid);
    void this.store.rm(`/local/domain/${domid}`).catch(() => {});
    // An HVM domain carries its IDE devices (createHvmDomainFromConfig).
    const ide = (hosted.runnable as { readonly ide?: IdeDevices }).ide;
    // The PV backends stop before the IDE controller's images close (they may share one).
    return (hosted.devices?.destroy() ?? Promise.resolve())
      .catch((error: Error) => this.hypervisor.log(`d${domid}: device teardown: ${error.message}`))
      .then(() => ide?.close());
  }

  private ensureRunning(): void {
    if (this.running !== null) return;
    this.running = this.hypervisor.run().finally(() => {
      this.running = null;
      if (this.hypervisor.guestDomains().some((domain) => domain.state === "running"))
        this.ensureRunning();
    });
  }

  private find(name: string): HostedDomain {
    const byId = /^[0-9]+$/.test(name) ? this.domains.get(Number(name)) : undefined;
    const hosted = byId ?? [...this.domains.values()].find((entry) => entry.config.name === name);
    if (hosted === undefined) throw new RequestError(`no domain "${name}"`);
    return hosted;
  }

  private async create(request: CreateRequest, restarts = 0): Promise<DaemonResponse> {
    const config = parseDomainConfig(request.configText, request.configName);
    if ([...this.domains.values()].some((entry) => entry.config.name === config.name)) {
      throw new RequestError(`a domain named "${config.name}" exists already`);
    }
    const ramdisk =
      config.ramdisk === undefined
        ? undefined
        : new Uint8Array(readFileSync(resolve(request.cwd, config.ramdisk)));
    const clock = { mode: this.options.clock ?? "wall" } as const;
    const kernel =
      config.type === "hvm"
        ? undefined
        : new Uint8Array(readFileSync(resolve(request.cwd, config.kernel)));
    if (kernel !== undefined && isArm64Image(kernel) && (config.vuart || config.xenAware === false))
      throw new RequestError(
        'vuart = "sbsa_uart" and xen_aware = 0 run only in the foreground for now (`kumo create -c` without a daemon)',
      );
    const runnable =
      kernel === undefined
        ? await createHvmDomainFromConfig(this.hypervisor, config, request, ramdisk, clock)
        : isArm64Image(kernel)
          ? // The CPU follows the kernel: an arm64 Image runs on @kumo/cpu-arm.
            createArm64Domain(this.hypervisor, config, { kernel, ramdisk }, { paused: true, clock })
          : createPvhDomain(
              this.hypervisor,
              config,
              { kernel: (await unpackKernelImage(kernel)).elf, ramdisk },
              { paused: true, clock },
            );
    const { domain } = runnable;
    const log = logConsoleToFile(runnable.console, consoleLogPath(config.name, this.options.env));
    this.domains.set(domain.domid, {
      config,
      request,
      restarts,
      restart: false,
      runnable,
      log,
      consoles: new Set(),
      endReason: undefined,
    });
    try {
      await introduceDomain(this.xenstored, this.hypervisor.host, {
        domid: domain.domid,
        name: config.name,
        memoryKiB: config.memoryMiB * 1024,
        vcpus: config.vcpus,
        storeGfn:
          "gic" in runnable
            ? Arm64SpecialPages.xenstoreGfn
            : runnable.layout.specialPages.xenstoreGfn,
        storePort: runnable.storePort,
      });
      const hosted = this.domains.get(domain.domid);
      // An HVM domain's CD-ROMs stay emulated and its IDE images are shared with the PV backend.
      const ide = "ide" in runnable ? runnable.ide : undefined;
      const devices = await attachConfiguredDevices(
        this.xenstored,
        this.hypervisor.host,
        domain.domid,
        ide === undefined ? config : { ...config, disks: pvDisksOf(config.disks) },
        {
          cwd: request.cwd,
          bridges: this.bridges,
          log: (line) => this.hypervisor.log(line),
          openImage: ide === undefined ? undefined : sharedImageOpener(ide),
        },
      );
      if (hosted === undefined) await devices.destroy();
      else hosted.devices = devices;
    } catch (error) {
      this.hypervisor.destroyDomain(domain.domid);
      throw error;
    }
    if (!request.paused) domain.unpause();
    this.ensureRunning();
    return {
      ok: true,
      result: { domid: domain.domid, name: config.name },
      warnings: config.warnings.map(
        (w) => `${request.configName}:${w.line}:${w.column}: ${w.message}`,
      ),
    };
  }

  private list(): DomainListEntry[] {
    return [...this.domains.values()].map(({ config, runnable }) => ({
      domid: runnable.domain.domid,
      name: config.name,
      memoryMiB: config.memoryMiB,
      vcpus: config.vcpus,
      // xl list's "b": every online vCPU waits (hlt, SCHEDOP_block/poll) for an event.
      state:
        runnable.domain.state === "running" &&
        runnable.domain.vcpus.every((vcpu) => !vcpu.online || vcpu.blocked !== 0)
          ? "blocked"
          : runnable.domain.state,
      instructions: runnable.domain.instructionsRetired(),
    }));
  }

  private async xenstoreList(path: string): Promise<[number, string, string][]> {
    const rows: [number, string, string][] = [];
    const walk = async (node: string, depth: number) => {
      for (const child of await this.store.list(node)) {
        const childPath = node === "/" ? `/${child}` : `${node}/${child}`;
        let value = "";
        try {
          value = await this.store.read(childPath);
        } catch {
          value = "";
        }
        rows.push([depth, child, value]);
        if (rows.length > 10_000)
          throw new RequestError("xenstore ls: more than 10000 nodes; narrow the path");
        await walk(childPath, depth + 1);
      }
    };
    await walk(path, 0);
    return rows;
  }

  private async handle(
    request: DaemonRequest,
    socket: Socket,
  ): Promise<DaemonResponse | "console"> {
    switch (request.command) {
      case "create":
        return this.create(request);
      case "list":
        return { ok: true, result: this.list() };
      case "destroy":
        this.hypervisor.destroyDomain(this.find(request.domain).runnable.domain.domid);
        return { ok: true };
      case "pause":
        this.find(request.domain).runnable.domain.pause();
        return { ok: true };
      case "unpause":
        this.find(request.domain).runnable.domain.unpause();
        this.ensureRunning();
        return { ok: true };
      case "shutdown":
      case "reboot": {
        // As xl: ask the guest through control/shutdown, which Linux's xenbus watches.
        const hosted = this.find(request.domain);
        await this.store.write(
          `/local/domain/${hosted.runnable.domain.domid}/control/shutdown`,
          request.command === "shutdown" ? "poweroff" : "reboot",
        );
        return { ok: true };
      }
      case "dmesg": {
        const lines = [...this.hypervisor.dmesg()];
        if (request.clear) (this.hypervisor.dmesg() as string[]).length = 0;
        return { ok: true, result: lines };
      }
      case "xenstore-ls":
        return { ok: true, result: await this.xenstoreList(request.path) };
      case "xenstore-read":
        return { ok: true, result: await this.store.read(request.path) };
      case "xenstore-write":
        await this.store.write(request.path, request.value);
        return { ok: true };
      case "console":
        this.attachConsole(this.find(request.domain), socket);
        return "console";
      default:
        throw new RequestError(`unknown request "${(request as { command: string }).command}"`);
    }
  }

  private attachConsole(hosted: HostedDomain, socket: Socket): void {
    socket.write(encodeJson(FrameType.Json, { ok: true } satisfies DaemonResponse));
    let current = hosted;
    let unsubscribe = () => {};
    const session: ConsoleSession = {
      end(reason) {
        unsubscribe();
        socket.end(encodeJson(FrameType.ConsoleEnd, { reason }));
      },
      follow(next) {
        unsubscribe();
        current = next;
        unsubscribe = next.runnable.console.onOutput((bytes) =>
          socket.write(encodeFrame(FrameType.ConsoleData, bytes)),
        );
        next.consoles.add(session);
      },
    };
    session.follow(hosted);
    socket.once("close", () => {
      unsubscribe();
      current.consoles.delete(session);
    });
    (socket as Socket & { kumoConsole?: (bytes: Uint8Array) => void }).kumoConsole = (bytes) =>
      current.runnable.console.write(bytes);
  }

  private serve(socket: Socket): void {
    const decoder = new FrameDecoder();
    let consoleInput: ((bytes: Uint8Array) => void) | undefined;
    let busy = Promise.resolve();
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      let frames: ReturnType<FrameDecoder["push"]>;
      try {
        frames = decoder.push(new Uint8Array(chunk));
      } catch (error) {
        socket.end(encodeJson(FrameType.Json, { ok: false, error: (error as Error).message }));
        return;
      }
      for (const frame of frames) {
        if (frame.type === FrameType.ConsoleData && consoleInput) {
          consoleInput(frame.payload);
          continue;
        }
        if (frame.type !== FrameType.Json) continue;
        // Requests on one connection are answered in order.
        busy = busy.then(async () => {
          let response: DaemonResponse | "console";
          try {
            response = await this.handle(decodeJson<DaemonRequest>(frame), socket);
          } catch (error) {
            const known =
              error instanceof RequestError ||
              error instanceof ProtocolError ||
              error instanceof Error;
            response = { ok: false, error: known ? (error as Error).message : String(error) };
          }
          if (response === "console") {
            consoleInput = (socket as Socket & { kumoConsole?: (bytes: Uint8Array) => void })
              .kumoConsole;
          } else {
            socket.write(encodeJson(FrameType.Json, response));
          }
        });
      }
    });
  }
}

/** An HVM domain of a create request: its kernel or firmware and the HVM keys (src/config/hvm-options.ts). */
async function createHvmDomainFromConfig(
  hypervisor: Hypervisor,
  config: DomainConfig,
  request: CreateRequest,
  ramdisk: Uint8Array | undefined,
  clock: { readonly mode: "wall" | "virtual" },
): Promise<HostedHvmDomain> {
  const hvm = parseHvmOptions(request.configText, request.configName);
  const read = (path: string) => new Uint8Array(readFileSync(resolve(request.cwd, path)));
  const firmware = hvm.firmware === undefined ? undefined : read(hvm.firmware);
  // The image files stay open until the domain is destroyed (`forget` closes them after the PV backends).
  return createHostedHvmDomain(
    hypervisor,
    config,
    hvm,
    { kernel: firmware === undefined ? read(config.kernel) : undefined, ramdisk, firmware },
    { cwd: request.cwd, clock, userError: (message) => new RequestError(message) },
  );
}

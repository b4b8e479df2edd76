import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/index";
import { runKumo } from "../src/node/index";
import { buildTestKernel, cacheDir } from "./support/oracles";

const packageDir = resolve(import.meta.dirname, "..");

async function kumo(args: string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = {}) {
  let stdout = "";
  let stderr = "";
  const status = await runKumo(args, {
    stdout: { write: (text: string | Uint8Array) => (stdout += text.toString()) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { KUMO_STATE_DIR: join(tmpdir(), "kumo-cli-state-none"), ...env },
    cwd,
  });
  return { status, stdout, stderr };
}

let work: string;
beforeAll(() => {
  buildTestKernel(32);
  work = mkdtempSync(join(tmpdir(), "kumo-cli-"));
  copyFileSync(join(cacheDir, "kernel32"), join(work, "vmlinux"));
  writeFileSync(join(work, "initrd.img"), new Uint8Array(50_000));
  writeFileSync(
    join(work, "guest.cfg"),
    'name = "tiny"\nmemory = 16\nkernel = "vmlinux"\nramdisk = "initrd.img"\nextra = "console=hvc0"\nvif = [ "" ]\n',
  );
});

describe("kumo command line", () => {
  it("prints help and exits 2 without a command", async () => {
    const result = await kumo([]);
    expect(result.status).toBe(2);
    expect(result.stdout).toMatch(/^Usage: kumo <command>/);
    for (const name of [
      "create",
      "list",
      "console",
      "shutdown",
      "reboot",
      "destroy",
      "pause",
      "unpause",
      "info",
      "dmesg",
      "xenstore",
    ]) {
      expect(result.stdout).toContain(`  ${name} `);
    }
  });

  it("prints per-command help", async () => {
    const result = await kumo(["help", "create"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("Usage: kumo create [options] <config-file> [key=value ...]");
    expect(result.stdout).toContain("-c, --console");
    expect((await kumo(["console", "--help"])).stdout).toContain("Usage: kumo console <domain>");
  });

  it("prints the package version", async () => {
    const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
    expect((await kumo(["--version"])).stdout).toBe(`kumo ${manifest.version}\n`);
  });

  it("rejects unknown commands, unknown options and missing arguments with status 2", async () => {
    expect(await kumo(["frobnicate"])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('unknown command "frobnicate"'),
    });
    expect(await kumo(["create", "-z", "x.cfg"])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining("'-z'"),
    });
    expect(await kumo(["console"])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining("missing <domain>"),
    });
    expect(await kumo(["destroy", "a", "b"])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('unexpected argument "b"'),
    });
    expect(await kumo(["xenstore", "rm", "/x"])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('unknown operation "rm"'),
    });
    expect(await kumo(["create", "guest.cfg", "memory"], work)).toMatchObject({ status: 2 });
  });

  it("builds a domain's boot image on a dry run", async () => {
    const result = await kumo(["create", "-n", "guest.cfg"], work);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^name +: tiny$/m);
    expect(result.stdout).toMatch(/^entry +: 0x100000 \(XEN_ELFNOTE_PHYS32_ENTRY\)$/m);
    expect(result.stdout).toMatch(/^kernel +: .*vmlinux \(elf, ELF32\)$/m);
    expect(result.stdout).toMatch(/^cmdline +: "console=hvc0"$/m);
    expect(result.stdout).toMatch(/^ramdisk +: initrd.img at 0xff3000 \(50000 bytes\)$/m);
    // ACPI by default (libxl's default on x86): the tables' page is type 3 (ACPI reclaimable).
    expect(result.stdout).toMatch(
      /^memmap +: 0x0\+0xe0000:1 0xe0000\+0x1000:3 0xe1000\+0xf1f000:1 0xfeff8000\+0x8000:2$/m,
    );
    expect(result.stdout).toMatch(/^acpi +: RSDP at 0xe0000, S5 sleep registers/m);
    const off = await kumo(["create", "-n", "guest.cfg", "acpi=0"], work);
    expect(off.stdout).toMatch(/^memmap +: 0x0\+0x1000000:1 0xfeff8000\+0x8000:2$/m);
    expect(off.stdout).toMatch(/^acpi +: off$/m);
  });

  it("applies key=value overrides and reports configuration errors with file, line and column", async () => {
    const small = await kumo(["create", "-n", "guest.cfg", "memory=1"], work);
    expect(small.status).toBe(1);
    expect(small.stderr).toMatch(/has only 1 MiB of RAM; give it at least 2 MiB/);
    writeFileSync(join(work, "bad.cfg"), 'name = "x"\nmemory = "lots"\n');
    const bad = await kumo(["create", "bad.cfg"], work);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(
      'kumo: bad.cfg:2:10: expected an integer (MiB) from 1 to 1048576 for "memory", found "lots"\n',
    );
    const missing = await kumo(["create", "nope.cfg"], work);
    expect(missing.stderr).toMatch(/cannot read the configuration file .*nope.cfg: no such file/);
  });

  it("prints configuration warnings unless -q", async () => {
    const noisy = await kumo(["create", "-n", "guest.cfg", "colour=1"], work);
    expect(noisy.stderr).toMatch(
      /warning: guest.cfg:\d+:1: "colour" is not a key Kumo understands yet; ignored/,
    );
    expect((await kumo(["create", "-n", "-q", "guest.cfg", "colour=1"], work)).stderr).toBe("");
  });

  it("says that without -c a domain needs a running daemon", async () => {
    const result = await kumo(["create", "guest.cfg"], work);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /no kumo daemon is running .*start one with `kumo daemon`, or use `kumo create -c`/,
    );
  });

  it("says that daemon commands need a running daemon", async () => {
    for (const args of [
      ["list"],
      ["console", "tiny"],
      ["shutdown", "1"],
      ["dmesg"],
      ["xenstore", "ls", "/"],
    ]) {
      const result = await kumo(args);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(
        /no kumo daemon is running \(no socket at .*\); start one with `kumo daemon`/,
      );
    }
  });

  it("prints host information", async () => {
    const result = await kumo(["info"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^nr_cpus +: \d+$/m);
    expect(result.stdout).toMatch(/^daemon +: not running$/m);
  });

  it("runs as an executable", async () => {
    // Bundle the bin as the package build does, next to a copy of package.json.
    const out = mkdtempSync(join(tmpdir(), "kumo-bin-"));
    mkdirSync(join(out, "dist", "bin"), { recursive: true });
    copyFileSync(join(packageDir, "package.json"), join(out, "package.json"));
    await build({
      entryPoints: [join(packageDir, "src/bin/kumo.ts")],
      outfile: join(out, "dist/bin/kumo.js"),
      bundle: true,
      platform: "node",
      format: "esm",
      conditions: ["source"],
      logLevel: "error",
    });
    const help = spawnSync(process.execPath, [join(out, "dist/bin/kumo.js"), "help"], {
      encoding: "utf8",
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: kumo/);
    const dry = spawnSync(
      process.execPath,
      [join(out, "dist/bin/kumo.js"), "create", "-n", "guest.cfg"],
      {
        cwd: work,
        encoding: "utf8",
      },
    );
    expect(dry.stderr).toBe("");
    expect(dry.status).toBe(0);
    const list = spawnSync(process.execPath, [join(out, "dist/bin/kumo.js"), "list"], {
      encoding: "utf8",
    });
    expect(list.status).toBe(1);
  });
});

describe("example configurations", () => {
  const examples = join(packageDir, "examples");
  for (const file of readdirSync(examples).filter((name) => name.endsWith(".cfg"))) {
    it(`${file} is a valid xl.cfg with no warnings`, () => {
      const config = parseDomainConfig(readFileSync(join(examples, file), "utf8"), file);
      expect(config.warnings).toEqual([]);
      expect(config.type).toBe("pvh");
    });
  }
});

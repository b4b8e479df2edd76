/**
 * `kumo disk create|info|convert|check` through runKumo, with Debian's
 * qemu-img as the independent reader (qemu-img check, info and compare).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseImageSize } from "../src/cli/disk";
import { runKumo } from "../src/node/index";

const hasQemuImg = existsSync("/usr/bin/qemu-img");

async function kumo(dir: string, ...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const status = await runKumo(argv, {
    stdout: { write: (text: string | Uint8Array) => (stdout += String(text)) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { KUMO_STATE_DIR: join(dir, "state") },
    cwd: dir,
  });
  return { status, stdout, stderr };
}

function qemuImg(...args: string[]): string {
  return execFileSync("qemu-img", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
}

describe("kumo disk sizes", () => {
  it("parses qemu-img sizes in binary units", () => {
    expect(parseImageSize("512")).toBe(512);
    expect(parseImageSize("64M")).toBe(64 << 20);
    expect(parseImageSize("1G")).toBe(1 << 30);
    expect(parseImageSize("1.5k")).toBe(1536);
    expect(parseImageSize("2T")).toBe(2 * 2 ** 40);
    expect(() => parseImageSize("12Q")).toThrow(/not a size/);
    expect(() => parseImageSize("100")).toThrow(/multiple of 512/);
  });
});

describe.skipIf(!hasQemuImg)("kumo disk", () => {
  it("creates images that qemu-img reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-disk-cli-"));
    for (const [format, qemuFormat] of [
      ["raw", "raw"],
      ["qcow2", "qcow2"],
      ["vhd", "vpc"],
    ] as const) {
      const file = `a.${format}`;
      const result = await kumo(dir, "disk", "create", "-f", format, file, "64M");
      expect(result).toMatchObject({ status: 0, stderr: "" });
      const info = JSON.parse(qemuImg("info", "--output=json", "-f", qemuFormat, join(dir, file)));
      expect(info["virtual-size"]).toBe(64 << 20);
      // qemu-img check supports qcow2 only (vpc: "This image format does not support checks").
      if (format === "qcow2") qemuImg("check", "-f", qemuFormat, join(dir, file));
      const ours = await kumo(dir, "disk", "info", file);
      expect(ours.status).toBe(0);
      expect(ours.stdout).toContain(`file format: ${format}`);
      expect(ours.stdout).toContain("virtual size: 64.0 MiB (67108864 bytes)");
    }
    const options = await kumo(
      dir,
      "disk",
      "create",
      "-f",
      "qcow2",
      "-o",
      "compat=0.10,cluster_size=4k",
      "b.qcow2",
      "1G",
    );
    expect(options.status).toBe(0);
    const info = JSON.parse(qemuImg("info", "--output=json", join(dir, "b.qcow2")));
    expect(info["cluster-size"]).toBe(4096);
    expect(info["format-specific"].data.compat).toBe("0.10");
  });

  it("converts with progress lines and the data qemu-img compare agrees with", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-disk-cli-"));
    const data = Buffer.alloc(8 << 20);
    // Some data, some holes.
    randomBytes(1 << 20).copy(data, 0);
    randomBytes(4096).copy(data, 5 << 20);
    writeFileSync(join(dir, "src.raw"), data);
    const toQcow2 = await kumo(dir, "disk", "convert", "-O", "qcow2", "src.raw", "d.qcow2");
    expect(toQcow2.status).toBe(0);
    expect(toQcow2.stderr).toMatch(/^convert: 0%\n(convert: \d+%\n)*convert: 100%\n$/);
    const toVhd = await kumo(
      dir,
      "disk",
      "convert",
      "-q",
      "-f",
      "qcow2",
      "-O",
      "vpc",
      "d.qcow2",
      "d.vhd",
    );
    expect(toVhd).toMatchObject({ status: 0, stderr: "" });
    qemuImg("check", "-f", "qcow2", join(dir, "d.qcow2"));
    qemuImg("compare", "-f", "raw", "-F", "qcow2", join(dir, "src.raw"), join(dir, "d.qcow2"));
    qemuImg("compare", "-f", "raw", "-F", "vpc", join(dir, "src.raw"), join(dir, "d.vhd"));
    const back = await kumo(dir, "disk", "convert", "-q", "d.vhd", "back.raw");
    expect(back.status).toBe(0);
    expect(readFileSync(join(dir, "back.raw")).equals(data)).toBe(true);
    const exists = await kumo(dir, "disk", "convert", "-q", "d.vhd", "back.raw");
    expect(exists.status).toBe(1);
  });

  it("checks images: 0 when clean, 1 with the reason for a corrupt or truncated one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-disk-cli-"));
    qemuImg("create", "-f", "qcow2", join(dir, "q.qcow2"), "16M");
    qemuImg("create", "-f", "vpc", join(dir, "v.vhd"), "16M");
    for (const file of ["q.qcow2", "v.vhd"]) {
      const clean = await kumo(dir, "disk", "check", "-q", file);
      expect(clean).toMatchObject({ status: 0, stderr: "" });
      expect(clean.stdout).toBe(`No errors were found on the image ${file}.\n`);
    }
    writeFileSync(join(dir, "t.qcow2"), readFileSync(join(dir, "q.qcow2")).subarray(0, 1000));
    const truncated = await kumo(dir, "disk", "check", "-q", "t.qcow2");
    expect(truncated.status).toBe(1);
    expect(truncated.stdout).toMatch(
      /^ERROR .*past the end of the 1000-byte file\n1 errors were found/,
    );
    const missing = await kumo(dir, "disk", "info", "nothere.qcow2");
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(
      /^kumo: disk info: .*nothere.qcow2: image file does not exist\n$/,
    );
  });

  it("answers wrong usage with status 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-disk-cli-"));
    for (const argv of [
      ["disk", "create", "x.img", "12Q"],
      ["disk", "frobnicate", "x.img"],
      ["disk", "create", "x.img"],
      ["disk", "create", "-f", "qed", "x.img", "1M"],
      ["disk", "create", "-f", "raw", "-o", "cluster_size=4k", "x.img", "1M"],
    ]) {
      const result = await kumo(dir, ...argv);
      expect(result.status, argv.join(" ")).toBe(2);
      expect(result.stderr).toMatch(/^kumo: disk: .*\nUsage: kumo disk/);
    }
    expect(existsSync(join(dir, "x.img"))).toBe(false);
  });
});

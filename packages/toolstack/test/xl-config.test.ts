import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DiskSpecError,
  parseDiskSpec,
  parseDomainConfig,
  parseVifSpec,
  parseXlConfigText,
  readXlBoolean,
  XlConfigError,
} from "../src/index";

function errorOf(run: () => unknown): XlConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof XlConfigError) return error;
    throw error;
  }
  throw new Error("expected an XlConfigError");
}

describe("xl.cfg syntax", () => {
  it("reads strings, numbers, lists and comments as libxlu does", () => {
    const file = parseXlConfigText(
      [
        "# a comment line",
        'name = "guest" # trailing comment',
        "memory = 512",
        "maxmem = 0x400",
        "octal = 010",
        "single = 'it''s'".replace("''", "\\'"),
        "disk = [ 'a,,xvda',",
        "         'b,,xvdb', ]",
        "empty = []",
        "nested = [ [1, 2], [3] ]",
        "x = 1; y = 2",
      ].join("\n"),
      "t.cfg",
    );
    const get = (key: string) => file.settings.get(key)?.value;
    expect(get("name")).toMatchObject({ kind: "string", value: "guest" });
    expect(get("memory")).toMatchObject({ kind: "number", value: 512, text: "512" });
    expect(get("maxmem")).toMatchObject({ kind: "number", value: 1024 });
    expect(get("octal")).toMatchObject({ kind: "number", value: 8 });
    expect(get("single")).toMatchObject({ kind: "string", value: "it's" });
    const disk = get("disk");
    expect(disk?.kind).toBe("list");
    if (disk?.kind === "list")
      expect(disk.items.map((item) => item.kind === "string" && item.value)).toEqual([
        "a,,xvda",
        "b,,xvdb",
      ]);
    expect(get("empty")).toMatchObject({ kind: "list", items: [] });
    expect(get("nested")).toMatchObject({
      kind: "list",
      items: [{ kind: "list" }, { kind: "list" }],
    });
    expect(get("x")).toMatchObject({ value: 1 });
    expect(get("y")).toMatchObject({ value: 2 });
    expect(file.settings.get("memory")?.position).toEqual({ line: 3, column: 1 });
  });

  it("decodes the escapes of libxlu's dequote", () => {
    const file = parseXlConfigText(String.raw`s = "a\"b\\c\n\t\x41\101\a\b\f\r\v'"`);
    const value = file.settings.get("s")?.value;
    expect(value).toMatchObject({ value: "a\"b\\c\n\tAA\x07\b\f\r\v'" });
  });

  it("keeps the last value of a repeated key and appends with +=", () => {
    const file = parseXlConfigText("a = 1\na = 2\nl = ['x']\nl += ['y', 'z']\nm += ['n']\n");
    expect(file.settings.get("a")?.value).toMatchObject({ value: 2 });
    expect(file.settings.get("l")?.value).toMatchObject({
      items: [{ value: "x" }, { value: "y" }, { value: "z" }],
    });
    expect(file.settings.get("m")?.value).toMatchObject({ items: [{ value: "n" }] });
  });

  it("accepts CRLF line ends and a last line without a newline", () => {
    const file = parseXlConfigText('name = "a"\r\nvcpus = 2');
    expect(file.settings.get("vcpus")?.value).toMatchObject({ value: 2 });
  });

  const malformed: [string, number, number, RegExp][] = [
    ["name = ", 1, 8, /expected a value for "name"/],
    ['name "x"', 1, 6, /expected "=" or "\+=" after "name"/],
    ["= 3", 1, 1, /expected a setting name/],
    ['name = "unterminated\nx = 1', 1, 8, /closing "/],
    ["memory = 12k", 1, 10, /integer/],
    ["memory = 09", 1, 10, /integer/],
    ["disk = [ 'a' 'b' ]", 1, 14, /expected "," or "]"/],
    ["disk = [ 'a',\n 'b'\n", 3, 1, /expected "\]" to close the list of "disk" opened at line 1/],
    ['Name = "x"', 1, 1, /names are lower case/],
    ['name = "x" "y"', 1, 12, /expected end of line/],
    ['s = "\\q"', 1, 6, /expected an escape/],
    ['s = "\\x4"', 1, 6, /two hexadecimal digits/],
    ["a = 1 @", 1, 7, /found "@"/],
    ["a = 1 2", 1, 7, /expected end of line or ";"/],
    ["l = 'x'\nl += ['y']", 2, 1, /"\+=" needs a list/],
    ["a = ,", 1, 5, /expected a value/],
  ];
  for (const [text, line, column, message] of malformed) {
    it(`reports ${JSON.stringify(text)} at ${line}:${column}`, () => {
      const error = errorOf(() => parseXlConfigText(text, "bad.cfg"));
      expect(error.line).toBe(line);
      expect(error.column).toBe(column);
      expect(error.message).toMatch(message);
      expect(error.message.startsWith(`bad.cfg:${line}:${column}: `)).toBe(true);
    });
  }

  it("bounds list nesting", () => {
    const error = errorOf(() => parseXlConfigText(`a = ${"[".repeat(10_000)}`));
    expect(error.message).toMatch(/nested lists/);
  });

  it("never throws anything but XlConfigError on random text (property)", () => {
    const alphabet = fc.constantFrom(..."ab1x0 =+[],;#'\"\\\n\r\t_Z9é".split(""));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: "binary" }),
          fc.array(alphabet).map((a) => a.join("")),
        ),
        (text) => {
          try {
            parseDomainConfig(text, "random.cfg");
          } catch (error) {
            if (!(error instanceof XlConfigError)) throw error;
            expect(error.line).toBeGreaterThanOrEqual(1);
            expect(error.column).toBeGreaterThanOrEqual(1);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("parses back what a printer writes (property)", () => {
    const atom = fc.oneof(
      fc.string().map((value) => ({ kind: "string" as const, value })),
      fc.nat().map((value) => ({ kind: "number" as const, value })),
    );
    const print = (value: { kind: "string"; value: string } | { kind: "number"; value: number }) =>
      value.kind === "number"
        ? String(value.value)
        : `"${[...value.value].map((c) => (c === '"' || c === "\\" ? `\\${c}` : c === "\n" ? "\\n" : c)).join("")}"`;
    fc.assert(
      fc.property(fc.array(atom, { maxLength: 5 }), atom, (items, single) => {
        const file = parseXlConfigText(
          `a = ${print(single)}\nb = [\n${items.map(print).join(",\n")}\n]\n`,
        );
        const a = file.settings.get("a")?.value;
        expect(a?.kind).toBe(single.kind);
        expect(a && a.kind !== "list" && a.value).toBe(single.value);
        const b = file.settings.get("b")?.value;
        expect(
          b?.kind === "list" && b.items.map((item) => item.kind !== "list" && item.value),
        ).toEqual(items.map((item) => item.value));
      }),
      { numRuns: 500 },
    );
  });
});

describe("domain configuration", () => {
  const minimal = 'name = "vm"\nkernel = "/boot/vmlinux"\n';

  it("applies xl's defaults", () => {
    const config = parseDomainConfig(minimal);
    expect(config).toMatchObject({
      name: "vm",
      type: "pvh",
      memoryMiB: 32,
      maxMemoryMiB: 32,
      vcpus: 1,
      maxVcpus: 1,
      kernel: "/boot/vmlinux",
      ramdisk: undefined,
      cmdline: "",
      onPoweroff: "destroy",
      onReboot: "restart",
      onCrash: "destroy",
      disks: [],
      vifs: [],
      warnings: [],
    });
  });

  it("reads a full PVH configuration", () => {
    const config = parseDomainConfig(
      [
        'name = "debian"',
        'type = "pvh"',
        "memory = 256",
        "maxmem = 512",
        "vcpus = 2",
        'kernel = "vmlinux"',
        'ramdisk = "initrd.img"',
        'root = "/dev/xvda1 ro"',
        'extra = "console=hvc0"',
        'on_crash = "preserve"',
        "disk = [ 'format=raw, vdev=xvda, access=rw, target=/images/a,b.img' ]",
        "vif = [ 'mac=00:16:3E:01:02:03,bridge=xenbr0' ]",
      ].join("\n"),
    );
    expect(config.memoryMiB).toBe(256);
    expect(config.maxMemoryMiB).toBe(512);
    expect(config.vcpus).toBe(2);
    expect(config.cmdline).toBe("root=/dev/xvda1 ro console=hvc0");
    expect(config.onCrash).toBe("preserve");
    expect(config.disks[0]).toMatchObject({
      target: "/images/a,b.img",
      vdev: "xvda",
      access: "rw",
      format: "raw",
    });
    expect(config.vifs[0]).toMatchObject({
      mac: "00:16:3e:01:02:03",
      bridge: "xenbr0",
      type: "vif",
    });
  });

  it("prefers cmdline over root and extra, with a warning", () => {
    const config = parseDomainConfig(`${minimal}cmdline = "console=hvc0"\nextra = "quiet"\n`);
    expect(config.cmdline).toBe("console=hvc0");
    expect(config.warnings.map((warning) => warning.message)).toEqual([
      'ignoring "root" and "extra" in favour of "cmdline"',
    ]);
  });

  it("accepts numbers written as strings, as xlu_cfg_get_long does", () => {
    expect(parseDomainConfig(`${minimal}memory = "0x100"\n`).memoryMiB).toBe(256);
  });

  it("warns about keys it does not know", () => {
    const config = parseDomainConfig(`${minimal}memroy = 5\n`);
    expect(config.warnings).toEqual([
      { line: 3, column: 1, message: '"memroy" is not a key Kumo understands yet; ignored' },
    ]);
  });

  it("reads 0/1 booleans", () => {
    const file = parseXlConfigText("on = 1\noff = 0\nbad = 2\n");
    expect(readXlBoolean(file, "on")).toBe(true);
    expect(readXlBoolean(file, "off")).toBe(false);
    expect(readXlBoolean(file, "missing")).toBeUndefined();
    expect(() => readXlBoolean(file, "bad")).toThrow(/0 or 1/);
  });

  const invalid: [string, number, number, RegExp][] = [
    ['kernel = "k"', 1, 1, /"name" setting/],
    ['name = "vm"', 1, 1, /"kernel" setting/],
    [`${minimal}type = "pv"`, 3, 8, /classic PV/],
    [`${minimal}type = "xen"`, 3, 8, /type "pvh" or "hvm"/],
    [`${minimal}memory = 0`, 3, 10, /integer \(MiB\) from 1/],
    [`${minimal}memory = [1]`, 3, 10, /found a list/],
    [`${minimal}memory = 64\nmaxmem = 32`, 4, 10, /maxmem >= memory/],
    [`${minimal}vcpus = 129`, 3, 9, /from 1 to 128/],
    [`${minimal}vcpus = 4\nmaxvcpus = 2`, 4, 12, /maxvcpus >= vcpus/],
    [`${minimal}on_reboot = "reboot"`, 3, 13, /one of destroy, restart/],
    ['name = "123"\nkernel = "k"', 1, 8, /not only digits/],
    ['name = "a/b"\nkernel = "k"', 1, 8, /domain name/],
    [`${minimal}disk = [ 'x,,xvda', 'y,,xvda' ]`, 3, 21, /"xvda" is used twice/],
    [`${minimal}disk = [ 'x,vmdk,xvda' ]`, 3, 10, /format must be one of/],
    [`${minimal}disk = [ 'x' ]`, 3, 10, /missing vdev/],
    [`${minimal}vif = [ 'mac=01:00:00:00:00:00' ]`, 3, 9, /multicast/],
    [`${minimal}vif = [ 'colour=red' ]`, 3, 9, /unknown vif key "colour"/],
  ];
  for (const [text, line, column, message] of invalid) {
    it(`rejects ${JSON.stringify(text.split("\n").pop())} at ${line}:${column}`, () => {
      const error = errorOf(() => parseDomainConfig(text, "vm.cfg"));
      expect(error.message).toMatch(message);
      expect([error.line, error.column]).toEqual([line, column]);
    });
  }
});

describe("disk specification (xl-disk-configuration(5))", () => {
  const equivalent = (specs: string[]) => {
    const parsed = specs.map(parseDiskSpec);
    for (const disk of parsed.slice(1)) expect(disk).toEqual(parsed[0]);
    return parsed[0];
  };

  it("reads the man page's first set of equivalent disks", () => {
    const disk = equivalent([
      "/dev/vg/guest-volume,,hda",
      "/dev/vg/guest-volume,raw,hda,rw",
      "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
      "raw:/dev/vg/guest-volume,hda,w",
    ]);
    expect(disk).toMatchObject({
      target: "/dev/vg/guest-volume",
      format: "raw",
      vdev: "hda",
      access: "rw",
      devtype: "disk",
    });
  });

  it("reads the man page's CD-ROM examples", () => {
    const disk = equivalent([
      "/root/image.iso,,hdc,cdrom",
      "/root/image.iso,,hdc,,cdrom",
      "/root/image.iso,raw,hdc,devtype=cdrom",
      "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
      "raw:/root/image.iso,hdc:cdrom,ro",
    ]);
    expect(disk).toMatchObject({ vdev: "hdc", access: "ro", devtype: "cdrom" });
  });

  it("understands deprecated prefixes", () => {
    expect(parseDiskSpec("phy:/dev/sdb,xvdb,w")).toMatchObject({
      target: "/dev/sdb",
      backendType: "phy",
      vdev: "xvdb",
    });
    expect(parseDiskSpec("qcow2:/img.q,xvdb,r")).toMatchObject({
      target: "/img.q",
      format: "qcow2",
      access: "ro",
    });
    expect(parseDiskSpec("tap:aio:/img,xvdc,w")).toMatchObject({
      target: "/img",
      format: "raw",
      backendType: "tap",
    });
  });

  it("lets target= take the rest of the string", () => {
    expect(parseDiskSpec("vdev=xvda,target=/a,b=c").target).toBe("/a,b=c");
  });

  it("rejects parameters given twice and unknown keys", () => {
    expect(() => parseDiskSpec("/a,raw,xvda,rw,format=raw")).toThrow(DiskSpecError);
    expect(() => parseDiskSpec("/a,,xvda,colour=blue")).toThrow(/unknown disk parameter "colour"/);
    expect(() => parseDiskSpec("/a,,xvda,rw,extra")).toThrow(/too many positional/);
    expect(() => parseDiskSpec("/a,,xvda,rx")).toThrow(/access must be/);
  });

  it("never throws anything but DiskSpecError (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.constantFrom(
            "/a",
            "",
            "raw",
            "xvda",
            "ro",
            "cdrom",
            "target=/x,y",
            "vdev=hda",
            "raw:",
            "=",
            ",",
            "format=vhd",
            " ",
          ),
          { maxLength: 8 },
        ),
        (parts) => {
          try {
            parseDiskSpec(parts.join(","));
          } catch (error) {
            if (!(error instanceof DiskSpecError)) throw error;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("vif specification (xl-network-configuration(5))", () => {
  it("accepts an empty vif with defaults", () => {
    expect(parseVifSpec("")).toMatchObject({ mac: undefined, type: "vif", bridge: undefined });
  });
  it("reads the usual keys", () => {
    expect(
      parseVifSpec(
        "mac=00:16:3e:00:00:01, bridge=br0, ip=10.0.0.2, mtu=1500, type=ioemu, model=e1000",
      ),
    ).toMatchObject({
      mac: "00:16:3e:00:00:01",
      bridge: "br0",
      ip: "10.0.0.2",
      mtu: 1500,
      type: "ioemu",
      model: "e1000",
    });
  });
  it("rejects malformed values", () => {
    expect(() => parseVifSpec("mac=00:16:3e")).toThrow(/six hex bytes/);
    expect(() => parseVifSpec("bridge")).toThrow(/key=value/);
    expect(() => parseVifSpec("mtu=9")).toThrow(/mtu must be/);
    expect(() => parseVifSpec("type=tap")).toThrow(/"vif" or "ioemu"/);
    expect(() => parseVifSpec("bridge=a,bridge=b")).toThrow(/twice/);
  });
});

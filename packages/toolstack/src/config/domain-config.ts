/**
 * Turns a parsed xl.cfg file into the domain configuration the builder
 * needs, checking the keys of xl.cfg(5) that Kumo understands now. Every
 * mistake is an `XlConfigError` that points at the value in the file.
 */
import { type DiskSpec, DiskSpecError, parseDiskSpec } from "./disk";
import { type SourcePosition, XlConfigError } from "./errors";
import { parseCNumber, parseXlConfigText, type XlConfigFile, type XlValue } from "./syntax";
import { parseVifSpec, type VifSpec, VifSpecError } from "./vif";

/** xl.cfg(5) "Event Actions". */
export type DomainAction =
  | "destroy"
  | "restart"
  | "rename-restart"
  | "preserve"
  | "coredump-destroy"
  | "coredump-restart"
  | "soft-reset";

const actions: readonly DomainAction[] = [
  "destroy",
  "restart",
  "rename-restart",
  "preserve",
  "coredump-destroy",
  "coredump-restart",
  "soft-reset",
];

export interface DomainConfig {
  readonly name: string;
  readonly type: "pvh" | "hvm";
  /** Initial RAM in MiB (`memory`). */
  readonly memoryMiB: number;
  /** Maximum RAM in MiB (`maxmem`, default `memory`). */
  readonly maxMemoryMiB: number;
  readonly vcpus: number;
  readonly maxVcpus: number;
  /** Kernel image path as written (relative paths are relative to the working directory, as with xl). */
  readonly kernel: string;
  readonly ramdisk: string | undefined;
  /** The kernel command line: `cmdline`, or `root=<root> <extra>` as xl builds it. */
  readonly cmdline: string;
  readonly onPoweroff: DomainAction;
  readonly onReboot: DomainAction;
  readonly onCrash: DomainAction;
  readonly disks: readonly DiskSpec[];
  readonly vifs: readonly VifSpec[];
  /**
   * `acpi` (xl.cfg(5): expose ACPI to the guest): give a PVH guest ACPI
   * tables and the sleep registers, and an HVM guest booted without
   * firmware the PC's tables and PM block (createHvmDomain). Undefined when
   * not set: the domain builders then give ACPI, as libxl does on x86.
   */
  readonly acpi?: boolean;
  /**
   * `vuart = "sbsa_uart"` (xl.cfg(5), Arm only): an emulated SBSA UART at
   * GUEST_PL011_BASE, described in the device tree. Undefined when not set.
   */
  readonly vuart?: "sbsa_uart";
  /**
   * `xen_aware = 0` (a Kumo key, not in xl.cfg(5); arm64 only): boot the
   * Image on a plain arm64 machine whose device tree has no `/hypervisor`
   * node, for kernels that are not Xen-aware; the SBSA UART is then its
   * console. Undefined (Xen-aware) when not set.
   */
  readonly xenAware?: boolean;
  /** Things that are not errors but that a user may want to know (unknown keys, ignored keys). */
  readonly warnings: readonly XlConfigWarning[];
}

export interface XlConfigWarning {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** Keys of xl.cfg(5) that Kumo reads. Others produce a warning, as a typo would. */
const knownKeys = new Set([
  "name",
  "type",
  "builder",
  "memory",
  "maxmem",
  "vcpus",
  "maxvcpus",
  "kernel",
  "ramdisk",
  "cmdline",
  "extra",
  "root",
  "on_poweroff",
  "on_reboot",
  "on_crash",
  "disk",
  "vif",
  "acpi",
  // arm64 (src/arm64/domain.ts)
  "vuart",
  "xen_aware",
  // HVM (src/config/hvm-options.ts)
  "serial",
  "firmware",
  "debugcon_port",
  "debugcon",
  "debug_exit_port",
  "xen_platform_pci",
  "vga",
  "boot",
]);

/** Largest guest Kumo accepts: guest RAM is one ArrayBuffer, which engines cap (V8: 2^53, practically host RAM). */
const maxMemoryMiB = 1 << 20;
/** Xen's HVM_MAX_VCPUS on x86 is 128 (public/hvm/hvm_info_table.h). */
const maxVcpus = 128;

/** Parses and validates the text of an xl.cfg file. Throws `XlConfigError`. */
export function parseDomainConfig(text: string, source = "<config>"): DomainConfig {
  return domainConfigFromFile(parseXlConfigText(text, source));
}

class Reader {
  readonly warnings: XlConfigWarning[] = [];
  constructor(readonly file: XlConfigFile) {}

  fail(position: SourcePosition, expected: string, found?: string): never {
    throw new XlConfigError(this.file.source, position, expected, found);
  }

  value(key: string): XlValue | undefined {
    return this.file.settings.get(key)?.value;
  }

  /** A string setting; libxlu stores numbers as text, so `name = 7` reads as "7". */
  string(key: string): { value: string; position: SourcePosition } | undefined {
    const value = this.value(key);
    if (value === undefined) return undefined;
    if (value.kind === "list")
      this.fail(value.position, `expected a string for "${key}"`, "a list");
    return { value: value.kind === "string" ? value.value : value.text, position: value.position };
  }

  /** An integer setting, read like libxlu's xlu_cfg_get_long (strtol base 0 on the text). */
  integer(key: string, min: number, max: number, unit = ""): number | undefined {
    const value = this.value(key);
    if (value === undefined) return undefined;
    const expected = `expected an integer${unit} from ${min} to ${max} for "${key}"`;
    if (value.kind === "list") this.fail(value.position, expected, "a list");
    const number = value.kind === "number" ? value.value : parseCNumber(value.value);
    if (!(number >= min && number <= max)) {
      this.fail(
        value.position,
        expected,
        value.kind === "number" ? value.text : JSON.stringify(value.value),
      );
    }
    return number;
  }

  /** A boolean setting: xl.cfg booleans are the integers 0 and 1. */
  boolean(key: string): boolean | undefined {
    const value = this.integer(key, 0, 1, " (0 or 1)");
    return value === undefined ? undefined : value === 1;
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    if (!(choices as readonly string[]).includes(value.value)) {
      this.fail(
        value.position,
        `expected one of ${choices.join(", ")} for "${key}"`,
        `"${value.value}"`,
      );
    }
    return value.value as T;
  }

  /** A list of strings (a lone string is taken as a one-element list, as libxlu does). */
  stringList(key: string): { value: string; position: SourcePosition }[] {
    const value = this.value(key);
    if (value === undefined) return [];
    const items = value.kind === "list" ? value.items : [value];
    return items.map((item) => {
      if (item.kind === "list")
        this.fail(item.position, `expected a string in the list of "${key}"`, "a list");
      return { value: item.kind === "string" ? item.value : item.text, position: item.position };
    });
  }

  warn(position: SourcePosition, message: string): void {
    this.warnings.push({ line: position.line, column: position.column, message });
  }
}

/** Validates an already parsed file (for callers that inspect the raw settings too). */
export function domainConfigFromFile(file: XlConfigFile): DomainConfig {
  const reader = new Reader(file);
  for (const setting of file.settings.values()) {
    if (!knownKeys.has(setting.key)) {
      reader.warn(setting.position, `"${setting.key}" is not a key Kumo understands yet; ignored`);
    }
  }

  const nameSetting = reader.string("name");
  if (nameSetting === undefined) {
    return reader.fail(
      { line: 1, column: 1 },
      'expected a "name" setting (every domain needs a name)',
    );
  }
  const name = nameSetting.value;
  // libxl refuses empty names; an all-digit name would be mistaken for a domid by `kumo console 3`.
  if (name === "" || /^[0-9]+$/.test(name) || hasSlashOrControl(name) || name.length > 64) {
    reader.fail(
      nameSetting.position,
      'expected a domain name: 1 to 64 characters, not only digits, without "/" or control characters',
      JSON.stringify(name),
    );
  }

  // Kumo runs PVH guests; "pv" (classic paravirtualisation) is out of scope (xen-abi.md section 10).
  let type: "pvh" | "hvm" = "pvh";
  const typeSetting = reader.string("type");
  const builder = reader.string("builder");
  if (typeSetting !== undefined) {
    if (typeSetting.value === "pv") {
      reader.fail(
        typeSetting.position,
        'expected type "pvh" or "hvm" (Kumo does not run classic PV guests)',
        '"pv"',
      );
    }
    if (typeSetting.value !== "pvh" && typeSetting.value !== "hvm") {
      reader.fail(
        typeSetting.position,
        'expected type "pvh" or "hvm"',
        JSON.stringify(typeSetting.value),
      );
    }
    type = typeSetting.value as "pvh" | "hvm";
    if (builder !== undefined)
      reader.warn(builder.position, '"builder" is ignored because "type" is set');
  } else if (builder !== undefined) {
    // xl.cfg(5): builder="hvm" is the deprecated spelling of type="hvm".
    if (builder.value === "hvm") type = "hvm";
    else
      reader.fail(
        builder.position,
        'expected builder "hvm" (deprecated; use type=)',
        JSON.stringify(builder.value),
      );
  }

  // libxl's default when memory is absent is 32 MiB (libxl__domain_build_info_setdefault).
  const memoryMiB = reader.integer("memory", 1, maxMemoryMiB, " (MiB)") ?? 32;
  const maxMemory = reader.integer("maxmem", 1, maxMemoryMiB, " (MiB)");
  if (maxMemory !== undefined && maxMemory < memoryMiB) {
    reader.fail(
      file.settings.get("maxmem")!.value.position,
      `expected maxmem >= memory (${memoryMiB})`,
      String(maxMemory),
    );
  }
  const vcpus = reader.integer("vcpus", 1, maxVcpus) ?? 1;
  const maxVcpusSetting = reader.integer("maxvcpus", 1, maxVcpus);
  if (maxVcpusSetting !== undefined && maxVcpusSetting < vcpus) {
    reader.fail(
      file.settings.get("maxvcpus")!.value.position,
      `expected maxvcpus >= vcpus (${vcpus})`,
      String(maxVcpusSetting),
    );
  }

  const kernel = reader.string("kernel");
  // An HVM guest may boot from its firmware instead (xl.cfg(5) firmware=; src/config/hvm-options.ts).
  const firmwareBoot = type === "hvm" && kernel === undefined && file.settings.has("firmware");
  if (!firmwareBoot && (kernel === undefined || kernel.value === "")) {
    return reader.fail(
      kernel?.position ?? { line: 1, column: 1 },
      `expected a "kernel" setting: a ${type.toUpperCase()} guest is booted from a kernel image`,
    );
  }
  const ramdisk = reader.string("ramdisk");

  // xl_parse.c: cmdline wins over root/extra; otherwise "root=<root> <extra>".
  const cmdline = reader.string("cmdline");
  const root = reader.string("root");
  const extra = reader.string("extra");
  let commandLine: string;
  if (cmdline !== undefined) {
    commandLine = cmdline.value;
    if (root !== undefined || extra !== undefined) {
      reader.warn(cmdline.position, 'ignoring "root" and "extra" in favour of "cmdline"');
    }
  } else {
    const parts: string[] = [];
    if (root !== undefined) parts.push(`root=${root.value}`);
    if (extra !== undefined) parts.push(extra.value);
    commandLine = parts.join(" ");
  }

  const disks = reader.stringList("disk").map(({ value, position }) => {
    try {
      return parseDiskSpec(value);
    } catch (error) {
      if (!(error instanceof DiskSpecError)) throw error;
      return reader.fail(
        position,
        `expected a disk specification (xl-disk-configuration(5)): ${error.message}`,
      );
    }
  });
  const vdevs = new Set<string>();
  disks.forEach((disk, index) => {
    if (vdevs.has(disk.vdev)) {
      reader.fail(
        reader.stringList("disk")[index].position,
        `expected each vdev once; "${disk.vdev}" is used twice`,
      );
    }
    vdevs.add(disk.vdev);
  });
  const vifs = reader.stringList("vif").map(({ value, position }) => {
    try {
      return parseVifSpec(value);
    } catch (error) {
      if (!(error instanceof VifSpecError)) throw error;
      return reader.fail(
        position,
        `expected a vif specification (xl-network-configuration(5)): ${error.message}`,
      );
    }
  });

  return {
    name,
    type,
    memoryMiB,
    maxMemoryMiB: maxMemory ?? memoryMiB,
    vcpus,
    maxVcpus: maxVcpusSetting ?? vcpus,
    kernel: kernel?.value ?? "",
    ramdisk: ramdisk?.value === "" ? undefined : ramdisk?.value,
    cmdline: commandLine,
    // xl.cfg(5) defaults: on_poweroff destroy, on_reboot restart, on_crash destroy.
    onPoweroff: reader.oneOf("on_poweroff", actions) ?? "destroy",
    onReboot: reader.oneOf("on_reboot", actions) ?? "restart",
    onCrash: reader.oneOf("on_crash", actions) ?? "destroy",
    disks,
    vifs,
    acpi: reader.boolean("acpi"),
    vuart: readVuart(reader),
    xenAware: reader.boolean("xen_aware"),
    warnings: reader.warnings,
  };
}

/** xl.cfg(5) `vuart`: "sbsa_uart" is the only virtual UART Xen on Arm emulates (libxl_arm.c, xen/arch/arm/vpl011.c). */
function readVuart(reader: Reader): "sbsa_uart" | undefined {
  const value = reader.string("vuart");
  if (value === undefined) return undefined;
  if (value.value !== "sbsa_uart")
    reader.fail(
      value.position,
      'expected vuart = "sbsa_uart" (the only virtual UART of an arm64 guest, as on Xen on Arm)',
      JSON.stringify(value.value),
    );
  return "sbsa_uart";
}

/** Reads a boolean the way xl.cfg spells them (0 or 1); exported for keys added later. */
export function readXlBoolean(file: XlConfigFile, key: string): boolean | undefined {
  return new Reader(file).boolean(key);
}

function hasSlashOrControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2f || c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

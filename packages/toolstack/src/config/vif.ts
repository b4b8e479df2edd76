/**
 * One `vif = [ ... ]` entry, parsed as xl-network-configuration(5) says:
 * comma-separated `key=value` pairs; every key is optional, so `''` is a
 * valid vif with all defaults. Unknown keys are errors, as xl's
 * parse_nic_config makes them.
 */

export interface VifSpec {
  /** "xx:xx:xx:xx:xx:xx", lower case; undefined lets the toolstack pick one (Xen OUI 00:16:3e). */
  readonly mac: string | undefined;
  readonly bridge: string | undefined;
  readonly type: "vif" | "ioemu";
  readonly model: string | undefined;
  readonly vifname: string | undefined;
  readonly script: string | undefined;
  /** Space-separated addresses, as xl passes them to the hotplug script. */
  readonly ip: string | undefined;
  readonly backend: string | undefined;
  readonly rate: string | undefined;
  readonly gatewaydev: string | undefined;
  readonly mtu: number | undefined;
  readonly devid: number | undefined;
}

export class VifSpecError extends Error {
  override readonly name = "VifSpecError";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const stringKeys = [
  "bridge",
  "model",
  "vifname",
  "script",
  "ip",
  "backend",
  "rate",
  "gatewaydev",
] as const;

/** Parses one vif specification string. Throws `VifSpecError`. */
export function parseVifSpec(spec: string): VifSpec {
  const values: Record<string, string> = {};
  let offset = 0;
  for (const raw of spec.split(",")) {
    const at = offset;
    offset += raw.length + 1;
    const parameter = raw.trim();
    if (parameter === "") continue;
    const equals = parameter.indexOf("=");
    if (equals < 0) {
      throw new VifSpecError(
        `expected key=value in the vif specification, found "${parameter}"`,
        at,
      );
    }
    const key = parameter.slice(0, equals);
    const value = parameter.slice(equals + 1);
    const known = key === "mac" || key === "type" || key === "mtu" || key === "devid";
    if (!known && !(stringKeys as readonly string[]).includes(key)) {
      throw new VifSpecError(
        `unknown vif key "${key}" (expected mac, bridge, type, model, vifname, script, ip, backend, rate, gatewaydev, mtu or devid)`,
        at,
      );
    }
    if (values[key] !== undefined) throw new VifSpecError(`vif key "${key}" is given twice`, at);
    values[key] = value;
  }
  let mac: string | undefined;
  if (values.mac !== undefined) {
    if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(values.mac)) {
      throw new VifSpecError(`mac "${values.mac}" is not six hex bytes like 00:16:3e:12:34:56`, 0);
    }
    mac = values.mac.toLowerCase();
    // Bit 0 of the first octet marks a group address, which no NIC may own (IEEE 802-2014 8.2).
    if (Number.parseInt(mac.slice(0, 2), 16) & 1) {
      throw new VifSpecError(`mac "${values.mac}" is a multicast address`, 0);
    }
  }
  const type = values.type ?? "vif";
  if (type !== "vif" && type !== "ioemu") {
    throw new VifSpecError(`vif type must be "vif" or "ioemu", not "${type}"`, 0);
  }
  const integer = (key: string, min: number, max: number): number | undefined => {
    const text = values[key];
    if (text === undefined) return undefined;
    const value = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
    if (!(value >= min && value <= max)) {
      throw new VifSpecError(
        `vif ${key} must be an integer from ${min} to ${max}, not "${text}"`,
        0,
      );
    }
    return value;
  };
  return {
    mac,
    bridge: values.bridge,
    type,
    model: values.model,
    vifname: values.vifname,
    script: values.script,
    ip: values.ip,
    backend: values.backend,
    rate: values.rate,
    gatewaydev: values.gatewaydev,
    mtu: integer("mtu", 68, 65535),
    devid: integer("devid", 0, 65535),
  };
}

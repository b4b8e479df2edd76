import { struct, union } from "../define";

// Xen public event_channel.h. These structs use only fixed-width types, so they are identical
// in every ABI (docs/xen-abi.md 2.5). `domid_t` is u16, `evtchn_port_t` u32.

export const evtchn_alloc_unbound = struct("evtchn_alloc_unbound", [
  ["dom", "u16"],
  ["remote_dom", "u16"],
  ["port", "u32"],
]);

export const evtchn_bind_interdomain = struct("evtchn_bind_interdomain", [
  ["remote_dom", "u16"],
  ["remote_port", "u32"],
  ["local_port", "u32"],
]);

export const evtchn_bind_virq = struct("evtchn_bind_virq", [
  ["virq", "u32"],
  ["vcpu", "u32"],
  ["port", "u32"],
]);

export const evtchn_bind_pirq = struct("evtchn_bind_pirq", [
  ["pirq", "u32"],
  ["flags", "u32"],
  ["port", "u32"],
]);

export const evtchn_bind_ipi = struct("evtchn_bind_ipi", [
  ["vcpu", "u32"],
  ["port", "u32"],
]);

export const evtchn_close = struct("evtchn_close", [["port", "u32"]]);
export const evtchn_send = struct("evtchn_send", [["port", "u32"]]);
export const evtchn_unmask = struct("evtchn_unmask", [["port", "u32"]]);
export const evtchn_reset = struct("evtchn_reset", [["dom", "u16"]]);

export const evtchn_status = struct("evtchn_status", [
  ["dom", "u16"],
  ["port", "u32"],
  ["status", "u32"],
  ["vcpu", "u32"],
  [
    "u",
    union("", [
      ["unbound", struct("", [["dom", "u16"]])],
      [
        "interdomain",
        struct("", [
          ["dom", "u16"],
          ["port", "u32"],
        ]),
      ],
      ["pirq", "u32"],
      ["virq", "u32"],
    ]),
  ],
]);

export const evtchn_bind_vcpu = struct("evtchn_bind_vcpu", [
  ["port", "u32"],
  ["vcpu", "u32"],
]);

/** FIFO ABI setup (EVTCHNOP_init_control); Kumo answers -ENOSYS but the layout is here. */
export const evtchn_init_control = struct("evtchn_init_control", [
  ["control_gfn", "u64"],
  ["offset", "u32"],
  ["vcpu", "u32"],
  ["link_bits", "u8"],
  ["_pad", "u8", { count: 7 }],
]);

export const evtchn_expand_array = struct("evtchn_expand_array", [["array_gfn", "u64"]]);

export const evtchn_set_priority = struct("evtchn_set_priority", [
  ["port", "u32"],
  ["priority", "u32"],
]);

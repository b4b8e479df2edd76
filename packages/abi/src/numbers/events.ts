/** Virtual IRQ numbers for EVTCHNOP_bind_virq. Xen public xen.h `VIRQ_*`. */
export const Virq = {
  TIMER: 0,
  DEBUG: 1,
  CONSOLE: 2,
  DOM_EXC: 3,
  TBUF: 4,
  DEBUGGER: 6,
  XENOPROF: 7,
  CON_RING: 8,
  PCPU_STATE: 9,
  MEM_EVENT: 10,
  ARGO: 11,
  ENOMEM: 12,
  XENPMU: 13,
  ARCH_0: 16,
  ARCH_1: 17,
  ARCH_2: 18,
  ARCH_3: 19,
  ARCH_4: 20,
  ARCH_5: 21,
  ARCH_6: 22,
  ARCH_7: 23,
} as const;
export type Virq = (typeof Virq)[keyof typeof Virq];

/** `evtchn_status.status`. Xen public event_channel.h `EVTCHNSTAT_*`. */
export const EvtchnStatus = {
  closed: 0,
  unbound: 1,
  interdomain: 2,
  pirq: 3,
  virq: 4,
  ipi: 5,
} as const;
export type EvtchnStatus = (typeof EvtchnStatus)[keyof typeof EvtchnStatus];

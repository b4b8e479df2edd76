/** Xenbus device states written to `<dir>/state`. Xen public io/xenbus.h `enum xenbus_state`. */
export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  /** The backend waits for the frontend's ring details (hotplug done). */
  InitWait: 2,
  /** The frontend's ring details are published. */
  Initialised: 3,
  Connected: 4,
  /** The device is being closed: the other side should close too. */
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;
export type XenbusState = (typeof XenbusState)[keyof typeof XenbusState];

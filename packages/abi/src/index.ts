export * from "./numbers";
export * from "./vcpu";

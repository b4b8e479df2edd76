export * from "./layout";
export * from "./numbers";
export * from "./vcpu";

export {
  type AbiLayouts,
  abiFromProtocol,
  abiLayouts,
  type RingName,
  STRUCT_DEFINITIONS,
  type StructName,
  type StructPaths,
} from "./abi-layouts";
export {
  ABIS,
  type Abi,
  type CompoundDef,
  type FieldSpec,
  type ScalarType,
  struct,
  union,
} from "./define";
export { defineRing, ringEntries } from "./defs/ring";
export {
  AbiLayoutError,
  type FieldLayout,
  type Reader,
  resolveLayout,
  type StructLayout,
  type Writer,
} from "./resolve";

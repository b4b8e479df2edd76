export const XEN_VERSION_MAJOR = 4;

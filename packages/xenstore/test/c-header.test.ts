/**
 * Layout facts checked against the C header nobody here wrote: Xen's public io/xs_wire.h as
 * Debian's libxen-dev installs it, compiled with the host gcc.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XsdErrors } from "@kumo/abi";
import { describe, expect, it } from "vitest";
import { RingLayout } from "../src";
import { HEADER_SIZE, PAYLOAD_MAX } from "../src/wire";

const HEADER = "/usr/include/xen/io/xs_wire.h";

describe.skipIf(!existsSync(HEADER) || !existsSync("/usr/bin/gcc"))("xs_wire.h", () => {
  it("agrees with the ring layout, header size, payload limit and error list", () => {
    const dir = mkdtempSync(join(tmpdir(), "kumo-xs-wire-"));
    try {
      const source = join(dir, "layout.c");
      writeFileSync(
        source,
        `#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <errno.h>
#include <xen/io/xs_wire.h>
#define FIELD(name) printf("\\"%s\\": %zu,\\n", #name, offsetof(struct xenstore_domain_interface, name))
int main(void) {
  printf("{\\n");
  FIELD(req); FIELD(rsp); FIELD(req_cons); FIELD(req_prod); FIELD(rsp_cons); FIELD(rsp_prod);
  FIELD(server_features); FIELD(connection); FIELD(error);
  printf("\\"size\\": %zu,\\n", sizeof(struct xenstore_domain_interface));
  printf("\\"header\\": %zu,\\n", sizeof(struct xsd_sockmsg));
  printf("\\"payloadMax\\": %d,\\n", XENSTORE_PAYLOAD_MAX);
  printf("\\"errors\\": [");
  for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
    printf("%s\\"%s\\"", i ? "," : "", xsd_errors[i].errstring);
  printf("]\\n}\\n");
  return 0;
}
`,
      );
      const binary = join(dir, "layout");
      execFileSync("gcc", ["-o", binary, source]);
      const facts = JSON.parse(execFileSync(binary).toString());
      expect({
        req: RingLayout.REQ,
        rsp: RingLayout.RSP,
        req_cons: RingLayout.REQ_CONS,
        req_prod: RingLayout.REQ_PROD,
        rsp_cons: RingLayout.RSP_CONS,
        rsp_prod: RingLayout.RSP_PROD,
        server_features: RingLayout.SERVER_FEATURES,
        connection: RingLayout.CONNECTION,
        error: RingLayout.ERROR,
        size: RingLayout.SIZE,
        header: HEADER_SIZE,
        payloadMax: PAYLOAD_MAX,
        errors: [...XsdErrors],
      }).toEqual(facts);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The xl.cfg files in examples/configs (which the README and `pnpm boot`
 * point users at) parse, given the kernel their comments say to add, with the HVM keys for the HVM ones: a key renamed
 * in the parser must not leave a broken example behind.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDomainConfig } from "../src/config/domain-config";
import { parseHvmOptions } from "../src/config/hvm-options";

const dir = join(import.meta.dirname, "../../../examples/configs");
const files = readdirSync(dir).filter((name) => name.endsWith(".cfg"));

describe("examples/configs", () => {
  it("has the configs the README names", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "linux-i386-pvh.cfg",
        "linux-i386-hvm.cfg",
        "linux-i386-hvm-seabios.cfg",
      ]),
    );
  });

  it.each(files)("%s parses", (name) => {
    let text = readFileSync(join(dir, name), "utf8");
    // Those without firmware take the kernel from the command line (`kernel=...`), as their
    // comments and `pnpm boot` say.
    if (!/^(kernel|firmware)\s*=/m.test(text)) text += 'kernel = "/guest/vmlinux"\n';
    const config = parseDomainConfig(text, name);
    expect(config.name).toMatch(/^linux-i386/);
    if (/^type\s*=\s*"hvm"/m.test(text)) expect(() => parseHvmOptions(text, name)).not.toThrow();
  });
});

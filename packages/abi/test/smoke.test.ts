import { expect, it } from "vitest";
import { XEN_VERSION_MAJOR } from "../src/index";

it("exports numbers", () => expect(XEN_VERSION_MAJOR).toBe(4));

import { describe, expect, it } from "vitest";
import { connectLocal, Xenstored } from "../src";

describe("smoke", () => {
  it("writes and reads", async () => {
    const daemon = new Xenstored();
    const client = connectLocal(daemon);
    await client.write("/a/b", "hello");
    expect(await client.read("/a/b")).toBe("hello");
    expect(await client.list("/a")).toEqual(["b"]);
    expect(await client.list("/")).toEqual(["tool", "local", "vm", "a"]);
  });
});

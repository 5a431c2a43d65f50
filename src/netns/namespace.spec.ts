// NetnsFd.open: only network namespaces get through, with clear errors otherwise.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { NamespaceError, NetnsFd } from "./namespace.js";
import { CLONE_NEWNET, native } from "../netlink/native.js";
import { createNamespace } from "../../test/sandbox.js";

const openFds = (): number => readdirSync("/proc/self/fd").length;

describe("NetnsFd.open", () => {
  it("opens /proc/self/ns/net and a named namespace", () => {
    const self = NetnsFd.open("/proc/self/ns/net");
    try {
      assert.equal(native.nsType(self.fd), CLONE_NEWNET);
      assert.equal(self.path, "/proc/self/ns/net");
    } finally {
      self.close();
    }
    if (process.env.WORKLOADNET_SANDBOX === "1") {
      const ns = createNamespace("nsfd");
      try {
        const fd = NetnsFd.open(ns.path);
        assert.equal(native.nsType(fd.fd), CLONE_NEWNET);
        fd.close();
      } finally {
        ns.remove();
      }
    }
  });

  it("refuses a regular file (and closes what it opened)", () => {
    const before = openFds();
    assert.throws(
      () => NetnsFd.open("/etc/passwd"),
      (err: unknown) => err instanceof NamespaceError && err.code === "ENOTNS" && /\/etc\/passwd is not a namespace/.test(err.message),
    );
    assert.equal(openFds(), before);
  });

  it("refuses a namespace of another type", () => {
    const before = openFds();
    for (const p of ["/proc/self/ns/mnt", "/proc/self/ns/uts"]) {
      assert.throws(
        () => NetnsFd.open(p),
        (err: unknown) => err instanceof NamespaceError && err.code === "ENOTNS" && err.message === `${p} is a namespace, but not a network namespace`,
      );
    }
    assert.equal(openFds(), before);
  });

  it("refuses a directory, a FIFO (without hanging) and a missing path", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "netns-spec-"));
    try {
      assert.throws(() => NetnsFd.open(dir), (err: unknown) => err instanceof NamespaceError && err.code === "ENOTNS");
      assert.throws(
        () => NetnsFd.open(path.join(dir, "missing")),
        (err: unknown) => err instanceof NamespaceError && err.code === "ENOENT" && /does not exist/.test(err.message),
      );
      const fifo = path.join(dir, "fifo");
      execFileSync("mkfifo", [fifo]);
      assert.throws(() => NetnsFd.open(fifo), (err: unknown) => err instanceof NamespaceError && err.code === "ENOTNS");
      writeFileSync(path.join(dir, "file"), "x");
      assert.throws(() => NetnsFd.open(path.join(dir, "file", "below")), (err: unknown) => err instanceof NamespaceError && err.code === "ENOENT");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("nsType reports a closed fd as EBADF", () => {
    const fd = openSync("/proc/self/ns/net", "r");
    closeSync(fd);
    assert.throws(() => native.nsType(fd), (err: unknown) => (err as { code?: string }).code === "EBADF");
  });
});

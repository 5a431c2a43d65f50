// The configuration snippets in the runtime guide are the ones the tests use:
// the conflist is what the daemon writes, the loopback warning is what it
// logs, and podman's settings are those test/podman.spec.ts runs podman with.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { DEFAULT_SOCKET_PATH } from "../src/cli/config.js";
import { CniInstaller, conflistText } from "../src/cni/install.js";
import { captureLogger } from "./log-capture.js";

const read = (rel: string): string => readFileSync(fileURLToPath(new URL(`../../${rel}`, import.meta.url)), "utf8");
const guide = read("docs/runtimes.md");

/** The fenced blocks of a language in a Markdown text. */
function blocks(text: string, lang: string): string[] {
  const out: string[] = [];
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of text.split("\n")) {
    if (open === undefined && line.startsWith("```")) open = { lang: line.slice(3).trim(), lines: [] };
    else if (open !== undefined && line === "```") {
      if (open.lang === lang) out.push(`${open.lines.join("\n")}\n`);
      open = undefined;
    } else open?.lines.push(line);
  }
  return out;
}

test("the guide's conflist is the daemon's, for the default socket", () => {
  const json = blocks(guide, "json");
  assert.equal(json.length, 1);
  assert.equal(json[0], conflistText(DEFAULT_SOCKET_PATH));
});

test("the guide's loopback warning is the one the daemon logs", async () => {
  const warning = blocks(guide, "").find((b) => b.startsWith("--cni-bin-dir"));
  assert.ok(warning, "the guide shows the warning");
  const dir = mkdtempSync(join(tmpdir(), "workloadnet-docs-"));
  try {
    const binDir = join(dir, "bin");
    mkdirSync(binDir);
    const { logger, lines } = captureLogger();
    await new CniInstaller({ binDir, confDir: dir, socketPath: DEFAULT_SOCKET_PATH, log: logger, pluginSource: "/bin/true" }).installPlugin();
    const logged = lines().find((l) => l.level === 40)?.msg;
    assert.equal(logged, warning.trim().replace("/opt/cni/bin", binDir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("podman's settings in the guide are the ones test/podman.spec.ts runs with", () => {
  const podmanTest = read("test/podman.spec.ts");
  const toml = blocks(guide, "toml");
  assert.equal(toml.length, 1);
  const lines = toml[0]!.trim().split("\n");
  assert.equal(lines[0], "[network]");
  assert.ok(podmanTest.includes('"[network]"'));
  for (const line of lines.slice(1)) {
    const key = line.split(" = ")[0]!;
    // Same key, and for the backend the same value; the directories are the test's own.
    assert.ok(podmanTest.includes(key === "network_backend" ? `'${line}'` : `\`${key} = `), `test/podman.spec.ts sets ${key}`);
  }
});

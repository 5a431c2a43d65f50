import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createSniffingServer } from "./protocol-sniff.js";

const MAGIC = Buffer.from("WKCNI/1\n");

describe("protocol sniffing on one socket", () => {
  let dir: string;
  let path: string;
  let server: net.Server;
  const dropped: string[] = [];
  const h2 = http2.createServer({}, (req, res) => {
    let n = 0;
    req.on("data", (d: Buffer) => (n += d.length));
    req.on("end", () => res.end(`h2 got ${n}`));
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "wk-sniff-"));
    path = join(dir, "s.sock");
    server = createSniffingServer({
      magic: MAGIC,
      onMagic: (s) => {
        const chunks: Buffer[] = [];
        s.on("data", (c: Buffer) => {
          chunks.push(c);
          if (Buffer.concat(chunks).includes("\n")) s.end(`side got ${Buffer.concat(chunks).toString()}`);
        });
        s.resume();
      },
      onOther: (s) => h2.emit("connection", s),
      onDropped: (why) => dropped.push(why),
      timeoutMs: 200,
    });
    await new Promise<void>((r) => server.listen(path, r));
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  const exchange = (parts: Buffer[], gapMs = 5): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = net.connect(path);
      let out = "";
      s.on("data", (d) => (out += d.toString()));
      s.on("error", reject);
      s.on("close", () => resolve(out));
      let i = 0;
      const next = (): void => {
        if (i < parts.length) {
          s.write(parts[i++]!);
          setTimeout(next, gapMs);
        }
      };
      next();
    });

  it("routes the magic to the side protocol, even when it arrives a byte at a time", async () => {
    assert.equal(await exchange([Buffer.concat([MAGIC, Buffer.from("hello\n")])]), "side got hello\n");
    const bytes = [...Buffer.concat([MAGIC, Buffer.from("x\n")])].map((b) => Buffer.from([b]));
    assert.equal(await exchange(bytes), "side got x\n");
  });

  it("hands everything else to the HTTP/2 server with nothing lost, many times over", async () => {
    for (let i = 0; i < 3; i++) {
      const client = http2.connect("http://localhost", { createConnection: () => net.connect(path) });
      const req = client.request({ ":method": "POST", ":path": "/" });
      req.end(Buffer.alloc(100_000 + i, 7));
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      await new Promise((r) => req.on("end", r));
      client.close();
      assert.equal(body, `h2 got ${100_000 + i}`);
    }
  });

  it("drops connections that close or stay silent before choosing", async () => {
    dropped.length = 0;
    await exchange([Buffer.from("WKC")]); // a prefix of the magic, then silence
    const s = net.connect(path);
    await new Promise((r) => s.on("connect", r));
    s.end();
    await new Promise((r) => s.on("close", r));
    assert.ok(dropped.some((d) => /no protocol chosen within 200 ms/.test(d)), dropped.join("; "));
    assert.ok(dropped.some((d) => /ended before/.test(d)), dropped.join("; "));
  });
});

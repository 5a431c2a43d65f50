import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AttachRequestSchema, AttachResponseSchema, DetachRequestSchema, DetachResponseSchema } from "../gen/workload_pb.js";
import { HOT_DECODERS, HOT_ENCODERS } from "./hot-codecs.js";

// A fixed-seed generator: the same cases every run.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const rand = rng(20261202);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const asciiString = (max: number): string => Array.from({ length: Math.floor(rand() * max) }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join("");
const someString = (max: number): string => pick([() => "", () => asciiString(max), () => `pod-é-${asciiString(8)}`, () => "x".repeat(200 + Math.floor(rand() * 200))])();

const decodeAttach = HOT_DECODERS.get(AttachRequestSchema.typeName)!;
const decodeDetach = HOT_DECODERS.get(DetachRequestSchema.typeName)!;

/** What the server does: the hand-written decoder, else protobuf-es. */
const serverDecode = (bytes: Uint8Array): unknown => decodeAttach(bytes) ?? fromBinary(AttachRequestSchema, bytes);

function attachRequest(): Uint8Array {
  const withNetns = rand() < 0.8;
  const ports = rand() < 0.15 ? [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIp: "" }] : [];
  const msg = create(AttachRequestSchema, {
    workloadId: someString(80),
    ...(withNetns ? { netns: { netnsPath: someString(60), ifName: pick(["", "eth0", "net1"]) } } : {}),
    portMappings: ports,
  });
  return toBinary(AttachRequestSchema, msg);
}

/** Bytes as other writers may send them: fields repeated, unknown ones, a wrong wire type. */
function oddBytes(plain: Uint8Array): Uint8Array {
  const unknownVarint = Uint8Array.from([(15 << 3) | 0, 0x96, 0x01]);
  const dupId = toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "second" }));
  const wrongWireType = Uint8Array.from([(1 << 3) | 0, 7]);
  return pick([
    () => Buffer.concat([plain, unknownVarint]),
    () => Buffer.concat([plain, dupId]),
    () => Buffer.concat([plain, plain]),
    () => Buffer.concat([wrongWireType, plain]),
  ])();
}

function sameOutcome(bytes: Uint8Array): void {
  let expected: unknown;
  let expectedErr: unknown;
  try {
    expected = fromBinary(AttachRequestSchema, bytes);
  } catch (err) {
    expectedErr = err;
  }
  if (expectedErr !== undefined) {
    assert.throws(() => serverDecode(bytes), (err: Error) => err.message === (expectedErr as Error).message);
    return;
  }
  const got = serverDecode(bytes) as typeof expected & object;
  assert.ok(equals(AttachRequestSchema, got as never, expected as never), `decoded differently: ${Buffer.from(bytes).toString("hex")}`);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected as object).sort());
}

describe("hand-written codecs of the Attach and Detach messages", () => {
  it("decode an AttachRequest as protobuf-es does, taking the plain ones themselves", () => {
    let taken = 0;
    for (let i = 0; i < 2000; i++) {
      const bytes = attachRequest();
      if (decodeAttach(bytes) !== undefined) taken++;
      sameOutcome(bytes);
    }
    // ASCII, no port mappings: most of them; the rest went to protobuf-es.
    assert.ok(taken > 800 && taken < 1900, `hand-decoded ${taken} of 2000`);
    const plain = toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "wk-1", netns: { netnsPath: "/run/netns/p", ifName: "eth0" } }));
    assert.deepEqual(decodeAttach(plain), {
      $typeName: AttachRequestSchema.typeName,
      workloadId: "wk-1",
      netns: { $typeName: "metropolis.node.core.network.workloads.NetNSAttachment", netnsPath: "/run/netns/p", ifName: "eth0" },
      portMappings: [],
    });
  });

  it("leave repeated, unknown, non-ASCII, cut-short and broken fields to protobuf-es: the same result or the same error", () => {
    for (let i = 0; i < 300; i++) sameOutcome(oddBytes(attachRequest()));
    // Each of these the hand-written decoder declines.
    const plain = toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "w1", netns: { netnsPath: "/run/netns/p", ifName: "eth0" } }));
    const declined = [
      Buffer.concat([plain, Uint8Array.from([(15 << 3) | 0, 0x96, 0x01])]), // an unknown field
      Buffer.concat([plain, plain]), // every field twice (the last id wins, the netns merge)
      Buffer.concat([Uint8Array.from([(1 << 3) | 0, 7]), plain]), // workload_id as a varint
      toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "w1", portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] })),
    ];
    for (const bytes of declined) {
      assert.equal(decodeAttach(bytes), undefined, `took ${Buffer.from(bytes).toString("hex")}`);
      sameOutcome(bytes);
    }
    // Fields in another order are still the plain case.
    const netnsFirst = Buffer.concat([
      toBinary(AttachRequestSchema, create(AttachRequestSchema, { netns: { netnsPath: "/run/netns/a", ifName: "eth0" } })),
      toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "w" })),
    ]);
    assert.notEqual(decodeAttach(netnsFirst), undefined);
    sameOutcome(netnsFirst);
    const nonAscii = toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "pod-é" }));
    assert.equal(decodeAttach(nonAscii), undefined);
    sameOutcome(nonAscii);
    const whole = toBinary(AttachRequestSchema, create(AttachRequestSchema, { workloadId: "x".repeat(300), netns: { netnsPath: "/run/netns/p", ifName: "eth0" } }));
    for (let cut = 0; cut < whole.length; cut++) sameOutcome(whole.subarray(0, cut));
    for (let i = 0; i < 300; i++) sameOutcome(Uint8Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
  });

  it("decode a DetachRequest as protobuf-es does", () => {
    for (let i = 0; i < 300; i++) {
      const msg = create(DetachRequestSchema, { workloadId: asciiString(60), ...(rand() < 0.5 ? { netns: { netnsPath: asciiString(40), ifName: "eth0" } } : {}) });
      const bytes = toBinary(DetachRequestSchema, msg);
      const got = decodeDetach(bytes);
      assert.ok(got !== undefined);
      assert.ok(equals(DetachRequestSchema, got as never, fromBinary(DetachRequestSchema, bytes)));
    }
  });

  it("encode an AttachResponse and a DetachResponse byte for byte as protobuf-es does", () => {
    const encode = HOT_ENCODERS.get(AttachResponseSchema.typeName)!;
    for (let i = 0; i < 2000; i++) {
      const value = {
        ip: Array.from({ length: Math.floor(rand() * 4) }, () => Uint8Array.from({ length: pick([4, 16, 0]) }, () => Math.floor(rand() * 256))),
        hostIfName: someString(15),
        hostMac: pick(["", "ee:ee:ee:ee:ee:ee"]),
        mac: someString(17),
      };
      const ours = encode(value);
      assert.ok(ours !== undefined);
      assert.deepEqual(Buffer.from(ours), Buffer.from(toBinary(AttachResponseSchema, create(AttachResponseSchema, value))));
    }
    assert.deepEqual(Buffer.from(encode({})!), Buffer.alloc(0));
    const detach = HOT_ENCODERS.get(DetachResponseSchema.typeName)!;
    assert.deepEqual(Buffer.from(detach({})!), Buffer.from(toBinary(DetachResponseSchema, create(DetachResponseSchema, {}))));
  });
});

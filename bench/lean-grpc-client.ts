// A minimal unary gRPC client over node:http2, for the benchmark only.
//
// Why not grpc-js here: its client spends about 1 ms of CPU per call, and on
// a small machine that CPU is taken from the daemon being measured. The
// runtimes that call us (containerd, CRI-O, kubelet) use grpc-go, whose
// per-call cost is a small fraction of that. This client does what a unary
// gRPC call needs and nothing else: one POST per call on a shared HTTP/2
// connection, length-prefixed protobuf messages (protobuf-es, generated
// code), grpc-status from the trailers. The bench also runs the same calls
// through grpc-js and prints both.
import * as http2 from "node:http2";
import * as net from "node:net";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  AttachRequestSchema,
  AttachResponseSchema,
  DetachRequestSchema,
  DetachResponseSchema,
  StatusRequestSchema,
  StatusResponseSchema,
  WorkloadNetworking,
} from "../src/gen/workload_pb.js";
import { lengthPrefixed } from "../src/server/unary-http2.js";

export class GrpcCallError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly details: string,
  ) {
    super(`${method}: gRPC status ${code}: ${details}`);
  }
}

export interface LeanClient {
  attach(req: MessageInitShape<typeof AttachRequestSchema>): Promise<MessageShape<typeof AttachResponseSchema>>;
  detach(req: MessageInitShape<typeof DetachRequestSchema>): Promise<MessageShape<typeof DetachResponseSchema>>;
  status(): Promise<MessageShape<typeof StatusResponseSchema>>;
  close(): void;
}

export function leanClient(socketPath: string): LeanClient {
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(socketPath) });
  session.on("error", () => undefined); // surfaced per call as a stream error
  const prefix = `/${WorkloadNetworking.typeName}/`;

  function unary<I extends DescMessage, O extends DescMessage>(method: string, inSchema: I, outSchema: O, init: MessageInitShape<I>): Promise<MessageShape<O>> {
    const frame = lengthPrefixed(toBinary(inSchema, create(inSchema, init)));
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": prefix + method,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      let headerStatus: string | undefined;
      let trailerStatus: string | undefined;
      let trailerMessage = "";
      stream.on("response", (headers) => {
        // A trailers-only response carries grpc-status in the headers.
        headerStatus = headers["grpc-status"] as string | undefined;
        trailerMessage = decodeURIComponent((headers["grpc-message"] as string | undefined) ?? "");
      });
      stream.on("trailers", (trailers) => {
        trailerStatus = trailers["grpc-status"] as string | undefined;
        trailerMessage = decodeURIComponent((trailers["grpc-message"] as string | undefined) ?? "");
      });
      stream.on("data", (d: Buffer) => chunks.push(d));
      stream.on("error", reject);
      stream.on("close", () => {
        const status = Number(trailerStatus ?? headerStatus ?? 2);
        if (status !== 0) return reject(new GrpcCallError(method, status, trailerMessage));
        const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (data.length < 5 || data.readUInt32BE(1) !== data.length - 5) {
          return reject(new GrpcCallError(method, 13, `malformed response of ${data.length} bytes`));
        }
        resolve(fromBinary(outSchema, data.subarray(5)));
      });
      stream.end(frame);
    });
  }

  return {
    attach: (req) => unary("Attach", AttachRequestSchema, AttachResponseSchema, req),
    detach: (req) => unary("Detach", DetachRequestSchema, DetachResponseSchema, req),
    status: () => unary("Status", StatusRequestSchema, StatusResponseSchema, {}),
    close: () => session.destroy(),
  };
}

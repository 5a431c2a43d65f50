// The WorkloadNetworking service for @grpc/grpc-js, built from the generated
// protobuf-es schemas (src/gen/workload_pb.ts): paths, and binary
// (de)serialisers for each method's messages.
//
// requestDeserialize never throws: grpc-js would answer a throw with INTERNAL
// "Error deserializing request", but a body that is not a valid message is the
// client's fault (SPEC §5). It returns a MalformedRequest instead, which the
// handler answers with INVALID_ARGUMENT.

import type * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  AttachRequestSchema,
  AttachResponseSchema,
  CheckRequestSchema,
  CheckResponseSchema,
  DetachRequestSchema,
  DetachResponseSchema,
  GCRequestSchema,
  GCResponseSchema,
  ListRequestSchema,
  ListResponseSchema,
  NodesRequestSchema,
  NodesResponseSchema,
  StatusRequestSchema,
  StatusResponseSchema,
  WorkloadNetworking,
} from "../gen/workload_pb.js";

/** "metropolis.node.core.network.workloads.WorkloadNetworking" */
export const SERVICE_NAME = WorkloadNetworking.typeName;

/** What requestDeserialize returns for a body that is not a valid request message. */
export class MalformedRequest {
  /** "malformed request message: <why>", for the client. */
  readonly message: string;
  constructor(reason: string) {
    this.message = `malformed request message: ${reason}`;
  }
}

/** A request as the handler gets it: the decoded message, or why it could not be decoded. */
export type Incoming<S extends DescMessage> = MessageShape<S> | MalformedRequest;
/** A response as the handler gives it: anything create() accepts. */
export type Outgoing<S extends DescMessage> = MessageInitShape<S>;

type Unary<I extends DescMessage, O extends DescMessage> = grpc.handleUnaryCall<Incoming<I>, Outgoing<O>>;

export interface WorkloadNetworkingHandlers extends grpc.UntypedServiceImplementation {
  attach: Unary<typeof AttachRequestSchema, typeof AttachResponseSchema>;
  detach: Unary<typeof DetachRequestSchema, typeof DetachResponseSchema>;
  status: Unary<typeof StatusRequestSchema, typeof StatusResponseSchema>;
  check: Unary<typeof CheckRequestSchema, typeof CheckResponseSchema>;
  list: Unary<typeof ListRequestSchema, typeof ListResponseSchema>;
  gc: Unary<typeof GCRequestSchema, typeof GCResponseSchema>;
  nodes: Unary<typeof NodesRequestSchema, typeof NodesResponseSchema>;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function unary<I extends DescMessage, O extends DescMessage>(
  name: string,
  input: I,
  output: O,
): grpc.MethodDefinition<Incoming<I>, Outgoing<O>> {
  return {
    path: `/${SERVICE_NAME}/${name}`,
    originalName: name,
    requestStream: false,
    responseStream: false,
    // The client side (unused by the server; grpc-js's type asks for it).
    requestSerialize: (req) => {
      if (req instanceof MalformedRequest) throw new TypeError(req.message);
      return asBuffer(toBinary(input, req));
    },
    requestDeserialize: (bytes) => {
      try {
        return fromBinary(input, bytes);
      } catch (err) {
        return new MalformedRequest(err instanceof Error ? err.message : String(err));
      }
    },
    responseSerialize: (res) => asBuffer(toBinary(output, create(output, res))),
    responseDeserialize: (bytes) => fromBinary(output, bytes) as Outgoing<O>,
  };
}

export const workloadNetworkingDefinition: grpc.ServiceDefinition<WorkloadNetworkingHandlers> = {
  attach: unary("Attach", AttachRequestSchema, AttachResponseSchema),
  detach: unary("Detach", DetachRequestSchema, DetachResponseSchema),
  status: unary("Status", StatusRequestSchema, StatusResponseSchema),
  check: unary("Check", CheckRequestSchema, CheckResponseSchema),
  list: unary("List", ListRequestSchema, ListResponseSchema),
  gc: unary("GC", GCRequestSchema, GCResponseSchema),
  nodes: unary("Nodes", NodesRequestSchema, NodesResponseSchema),
};

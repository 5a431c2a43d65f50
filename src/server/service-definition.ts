// The routes of a gRPC service for unary-http2.ts, built from its generated
// protobuf-es descriptor (src/gen/workload_pb.ts): one per unary method that
// has a handler, at "/<package.Service>/<Method>", with binary (de)serialisers
// of its messages. Nothing here names a method: a method added to the proto
// is served as soon as the handlers object has an entry for it (by its
// localName, e.g. "attach"); one without a handler is UNIMPLEMENTED.

import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { UnaryRoute } from "./unary-http2.js";
import { WorkloadNetworking } from "../gen/workload_pb.js";
import { HOT_DECODERS, HOT_ENCODERS } from "./hot-codecs.js";

/** "metropolis.node.core.network.workloads.WorkloadNetworking" */
export const SERVICE_NAME = WorkloadNetworking.typeName;

/** A unary handler: the decoded request, a signal for the caller going away; resolves with anything create() accepts. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (request: MessageShape<I>, signal: AbortSignal) => Promise<MessageInitShape<O>>;

/** Handlers for the methods of a generated service, by localName; all optional. */
export type ServiceHandlers<S extends { method: Record<string, { input: DescMessage; output: DescMessage }> }> = {
  [K in keyof S["method"]]?: UnaryHandler<S["method"][K]["input"], S["method"][K]["output"]>;
};

export type WorkloadNetworkingHandlers = ServiceHandlers<typeof WorkloadNetworking>;

/** Routes by path for every unary method of `service` that `handlers` has. */
export function unaryRoutes(service: DescService, handlers: Record<string, UnaryHandler<DescMessage, DescMessage> | undefined>): Map<string, UnaryRoute> {
  const routes = new Map<string, UnaryRoute>();
  for (const method of service.methods) {
    const handle = handlers[method.localName];
    if (method.methodKind !== "unary" || handle === undefined) continue;
    const { input, output } = method;
    // The hand-written codec where there is one, for its plain case (hot-codecs.ts).
    const hotDecode = HOT_DECODERS.get(input.typeName);
    const hotEncode = HOT_ENCODERS.get(output.typeName);
    routes.set(`/${service.typeName}/${method.name}`, {
      name: method.name,
      decode: (bytes) => hotDecode?.(bytes) ?? fromBinary(input, bytes),
      encode: (response) => hotEncode?.(response as object) ?? toBinary(output, create(output, response as MessageInitShape<DescMessage>)),
      handle: handle as UnaryRoute["handle"],
    });
  }
  return routes;
}

// One forwarded CNI invocation on a connection the protocol sniffer handed
// over (the magic is already consumed): read the request frame, run the
// plugin logic, write the reply, close. Lengths are capped before anything is
// buffered, and a request that does not arrive in time is dropped.
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { CniCode, CniError } from "./errors.js";
import type { CniPlugin } from "./plugin.js";
import { LATEST_VERSION } from "./versions.js";
import { encodeReply, FramingError, parseEnvBlock, parseRequestHeader, REQUEST_HEADER_BYTES, type CniReply, type CniRequest } from "./wire.js";

export interface CniConnectionOptions {
  /** Time for the whole request to arrive. Default 10 s. */
  readTimeoutMs?: number;
  /**
   * Runs before the request is handled, e.g. a peer-credential check; a
   * CniError it throws is the reply.
   */
  authorize?: (socket: Socket) => void | Promise<void>;
}

export function serveCniConnection(socket: Socket, plugin: CniPlugin, log: Logger, options: CniConnectionOptions = {}): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let need = REQUEST_HEADER_BYTES;
  let lengths: { envLen: number; stdinLen: number } | undefined;
  const aborter = new AbortController();
  let answered = false;

  const timer = setTimeout(() => {
    log.warn({ received: have }, "CNI request not received in time; closing the connection");
    socket.destroy();
  }, options.readTimeoutMs ?? 10_000);
  timer.unref();

  const stopReading = (): void => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.pause();
  };
  const send = (r: CniReply): void => {
    answered = true;
    if (!socket.destroyed) socket.end(encodeReply(r));
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    have += chunk.length;
    try {
      if (lengths === undefined && have >= REQUEST_HEADER_BYTES) {
        lengths = parseRequestHeader(Buffer.concat(chunks, have).subarray(0, REQUEST_HEADER_BYTES));
        need = REQUEST_HEADER_BYTES + lengths.envLen + lengths.stdinLen;
      }
      if (lengths === undefined || have < need) return;
      if (have > need) throw new FramingError("more bytes than the request header announced");
    } catch (err) {
      stopReading();
      log.warn({ err: (err as Error).message }, "malformed CNI request");
      send(errorReply(new CniError(CniCode.IoFailure, `malformed request from the CNI plugin: ${(err as Error).message}`)));
      return;
    }
    stopReading();
    const all = Buffer.concat(chunks, have);
    const envEnd = REQUEST_HEADER_BYTES + lengths.envLen;
    let request: CniRequest;
    try {
      request = { env: parseEnvBlock(all.subarray(REQUEST_HEADER_BYTES, envEnd)), stdin: all.subarray(envEnd) };
    } catch (err) {
      send(errorReply(new CniError(CniCode.IoFailure, `malformed request from the CNI plugin: ${(err as Error).message}`)));
      return;
    }
    void handle(request);
  };

  const handle = async (request: CniRequest): Promise<void> => {
    try {
      await options.authorize?.(socket);
    } catch (err) {
      const e = err instanceof CniError ? err : new CniError(CniCode.PermissionDenied, `permission denied: ${(err as Error).message}`);
      send(errorReply(e));
      return;
    }
    send(await plugin.run(request, aborter.signal));
  };

  socket.on("data", onData);
  socket.on("error", (err) => log.debug({ err: err.message }, "CNI connection error"));
  socket.on("close", () => {
    clearTimeout(timer);
    // Only a call still running is aborted (an abort builds a DOMException, ~20 µs).
    if (!answered) aborter.abort();
  });
  socket.resume();
}

function errorReply(e: CniError): CniReply {
  return { exitCode: 1, stdout: Buffer.from(`${JSON.stringify(e.toJson(LATEST_VERSION))}\n`), stderr: Buffer.alloc(0) };
}

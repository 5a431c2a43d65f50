// One unix socket, two protocols: the gRPC API (HTTP/2 cleartext) and the CNI
// plugin's forwarding protocol. Every accepted connection is sniffed: if its
// first bytes are the CNI magic line it goes to the CNI handler, otherwise the
// bytes are put back (socket.unshift) and the socket is handed to the HTTP/2
// server as if that server had accepted it.
//
// An HTTP/2 client always starts with the connection preface "PRI * HTTP/2.0",
// whose first byte already differs from the magic's, so gRPC connections are
// handed on as soon as their first chunk arrives: sniffing adds no round trip.

import * as net from "node:net";
import type { Socket } from "node:net";

export interface SniffOptions {
  /** The bytes that select the alternative protocol, e.g. "WKCNI/1\n". */
  magic: Buffer;
  /** Gets connections that started with the magic; the magic is consumed, later bytes are still unread. */
  onMagic: (socket: Socket) => void;
  /** Gets every other connection, with the bytes read so far put back. */
  onOther: (socket: Socket) => void;
  /** A connection that sends too little to decide within this time is closed. Default 10 s. */
  timeoutMs?: number;
  /** Told about connections closed during sniffing (timeouts, errors). */
  onDropped?: (reason: string) => void;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** A net.Server whose connections are sniffed and dispatched; listen() on it as usual. */
export function createSniffingServer(options: SniffOptions): net.Server {
  const server = net.createServer({ pauseOnConnect: true }, (socket) => sniff(socket, options));
  return server;
}

/** Reads just enough of the connection to tell the protocols apart, then dispatches it. */
export function sniff(socket: Socket, options: SniffOptions): void {
  const { magic } = options;
  const chunks: Buffer[] = [];
  let have = 0;
  let done = false;

  const finish = (): void => {
    done = true;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.off("end", onEnd);
    socket.pause();
  };
  const drop = (reason: string): void => {
    if (done) return;
    finish();
    options.onDropped?.(reason);
    socket.destroy();
  };
  const onError = (err: Error): void => drop(`connection error while sniffing: ${err.message}`);
  const onEnd = (): void => drop("connection ended before its protocol was known");
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    have += chunk.length;
    const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, have);
    const n = Math.min(have, magic.length);
    if (head.subarray(0, n).equals(magic.subarray(0, n))) {
      if (have < magic.length) return; // a prefix of the magic so far: wait for more
      finish();
      if (have > magic.length) socket.unshift(head.subarray(magic.length));
      options.onMagic(socket);
      return;
    }
    finish();
    socket.unshift(head);
    options.onOther(socket);
  };
  const timer = setTimeout(() => drop(`no protocol chosen within ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  timer.unref();
  socket.on("data", onData);
  socket.on("error", onError);
  socket.on("end", onEnd);
  socket.resume();
}

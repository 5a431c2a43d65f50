// The server side of one HTTP/2 connection (RFC 9113), for request/response
// exchanges whose request is read whole before it is answered: gRPC unary
// calls. Why our own and not node:http2: node:http2 makes every stream a
// Duplex with its events, and sends a response's trailers in a later write
// than its headers and data, after the event loop has gone round once more;
// a daemon that has served only tens of calls runs all of that still
// uncompiled (docs/performance-cold.md). Here a whole response, headers, data
// and trailers, leaves in one write when the flow-control windows allow.
//
// What is implemented: the preface and settings exchange, HPACK with its
// dynamic table (hpack.ts), HEADERS with CONTINUATION, padding, stream state
// and the peer's resets, flow control both ways (a response larger than the
// peer's windows is sent as they open), PING, GOAWAY both ways, and the
// errors the RFC asks for. Not implemented, as a unary server needs none of
// it: server push, priorities (PRIORITY frames are read and ignored), and
// streaming bodies: a request is bounded by the stream window we grant
// (`maxRequestBytes`), and its data is only counted as consumed, for the
// connection window, once the request has ended or its stream has gone, so
// one connection holds at most `connectionWindow` bytes of requests.

import type { Socket } from "node:net";
import { HpackDecoder, HpackError } from "./hpack.js";
import {
  ConnectionError,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER,
  FrameReader,
  FrameType,
  frame,
  goawayFrame,
  headerBlockRoom,
  MAX_WINDOW,
  PREFACE,
  rstStreamFrame,
  Setting,
  settingsFrame,
  StreamError,
  unpad,
  windowUpdateFrame,
  writeFrameHeader,
  writeHeaderBlock,
  type Frame,
} from "./frames.js";

/** A request stream, as the application sees it. */
export interface ServerStream {
  readonly id: number;
  /** Request headers by lowercase name, pseudo-headers included; repeated ones joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** Request data, as it arrives. */
  onData: ((chunk: Buffer) => void) | undefined;
  /** The request ended (END_STREAM). */
  onEnd: (() => void) | undefined;
  /** The stream went before it was answered: reset by the peer, or the connection closed. */
  onAbort: (() => void) | undefined;
  /** True once the stream is answered or gone: respond() does nothing then. */
  readonly closed: boolean;
  /**
   * Answers: `headers` (an HPACK block); then, when `body` is given, the body
   * and the `trailers` block. Without a body the headers end the stream. A
   * request not yet ended is cut off after the answer (RST_STREAM NO_ERROR).
   */
  respond(headers: Uint8Array, body?: Uint8Array, trailers?: Uint8Array): void;
}

export interface ServerConnectionOptions {
  onStream(stream: ServerStream): void;
  /** A connection-level failure (a protocol error by the peer, a socket error): the connection is gone. */
  onError?(err: Error): void;
  /** Requests of larger bodies are a FLOW_CONTROL_ERROR on their stream. Default 1 MiB + 64 KiB. */
  maxRequestBytes?: number;
  /** Default 128. */
  maxConcurrentStreams?: number;
  /** Default 64 KiB. */
  maxHeaderListSize?: number;
  /** Request bytes one connection may hold before they are consumed. Default 16 MiB. */
  connectionWindow?: number;
}

/** A stream of ours while it is open. */
class Stream implements ServerStream {
  onData: ((chunk: Buffer) => void) | undefined = undefined;
  onEnd: (() => void) | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  remoteEnded = false;
  closed = false;
  /** Request bytes received (for our stream window) and not yet released to the connection window. */
  received = 0;
  held = 0;
  sendWindow: number;
  /** A response waiting for the peer's windows. */
  pending: { body: Uint8Array; trailers: Uint8Array | undefined } | undefined;

  constructor(
    readonly id: number,
    readonly headers: Readonly<Record<string, string>>,
    private readonly conn: ServerConnection,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  respond(headers: Uint8Array, body?: Uint8Array, trailers?: Uint8Array): void {
    this.conn.respond(this, headers, body, trailers);
  }
}

const DEFAULTS = {
  maxRequestBytes: (1 << 20) + (64 << 10),
  maxConcurrentStreams: 128,
  maxHeaderListSize: 64 << 10,
  connectionWindow: 16 << 20,
};
/** A header block being put together from HEADERS and CONTINUATION frames. */
const MAX_HEADER_BLOCK = 256 << 10;

export class ServerConnection {
  private readonly reader: FrameReader;
  private readonly decoder: HpackDecoder;
  private readonly streams = new Map<number, Stream>();
  private readonly blocked = new Set<Stream>();
  private readonly limits: typeof DEFAULTS;
  private out: Buffer[] = [];
  /** Bytes of the preface still to be checked. */
  private prefaceAt = 0;
  private settingsSeen = false;
  private lastStreamId = 0;
  /** Our GOAWAY's last stream id, once sent. */
  private goawayAt: number | undefined;
  private peerGoaway = false;
  private peerMaxFrame = DEFAULT_MAX_FRAME;
  private peerInitialWindow = DEFAULT_WINDOW;
  private connSendWindow = DEFAULT_WINDOW;
  /** Request bytes consumed and not yet given back to the peer's connection window. */
  private released = 0;
  private headerBlock: { streamId: number; endStream: boolean; parts: Buffer[]; size: number } | undefined;
  private gone = false;
  /** Set while frames of one read are handled: writes are gathered and sent at the end. */
  private batching = false;
  private flushScheduled = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: ServerConnectionOptions,
  ) {
    this.limits = {
      maxRequestBytes: options.maxRequestBytes ?? DEFAULTS.maxRequestBytes,
      maxConcurrentStreams: options.maxConcurrentStreams ?? DEFAULTS.maxConcurrentStreams,
      maxHeaderListSize: options.maxHeaderListSize ?? DEFAULTS.maxHeaderListSize,
      connectionWindow: options.connectionWindow ?? DEFAULTS.connectionWindow,
    };
    this.decoder = new HpackDecoder(4096, this.limits.maxHeaderListSize);
    this.reader = new FrameReader((f) => this.onFrame(f));
    // Our settings and the larger connection window go out at once.
    this.queue(
      settingsFrame([
        [Setting.MAX_CONCURRENT_STREAMS, this.limits.maxConcurrentStreams],
        [Setting.INITIAL_WINDOW_SIZE, this.limits.maxRequestBytes],
        [Setting.MAX_HEADER_LIST_SIZE, this.limits.maxHeaderListSize],
      ]),
    );
    if (this.limits.connectionWindow > DEFAULT_WINDOW) this.queue(windowUpdateFrame(0, this.limits.connectionWindow - DEFAULT_WINDOW));
    this.flush();
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("end", () => this.socket.end());
    socket.on("close", () => this.fail(undefined));
    socket.resume();
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** GOAWAY: streams already started are answered, no new ones start; the connection ends once none is left. */
  close(): void {
    if (this.gone) return;
    if (this.goawayAt === undefined) {
      this.goawayAt = this.lastStreamId;
      this.write(goawayFrame(this.lastStreamId, ErrorCode.NO_ERROR));
    }
    this.endIfIdle();
  }

  /** Ends the connection now; open streams see onAbort. */
  destroy(): void {
    this.socket.destroy();
    this.fail(undefined);
  }

  // Reading.

  private onBytes(chunk: Buffer): void {
    if (this.gone) return;
    this.batching = true;
    try {
      if (this.prefaceAt < PREFACE.length) {
        const n = Math.min(PREFACE.length - this.prefaceAt, chunk.length);
        if (!chunk.subarray(0, n).equals(PREFACE.subarray(this.prefaceAt, this.prefaceAt + n))) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 connection preface");
        }
        this.prefaceAt += n;
        chunk = chunk.subarray(n);
        if (chunk.length === 0) return;
      }
      this.reader.push(chunk);
    } catch (err) {
      this.connectionError(err);
    } finally {
      this.batching = false;
      this.flushSoon();
    }
  }

  private onFrame(f: Frame): void {
    if (this.gone) throw new ConnectionError(ErrorCode.NO_ERROR, "connection closed");
    if (!this.settingsSeen) {
      if (f.type !== FrameType.SETTINGS || f.flags & Flag.ACK) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "the connection must start with SETTINGS");
      this.settingsSeen = true;
    }
    if (this.headerBlock !== undefined && (f.type !== FrameType.CONTINUATION || f.streamId !== this.headerBlock.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "a header block was interrupted by another frame");
    }
    try {
      switch (f.type) {
        case FrameType.DATA:
          return this.onData(f);
        case FrameType.HEADERS:
          return this.onHeaders(f);
        case FrameType.CONTINUATION:
          return this.onContinuation(f);
        case FrameType.PRIORITY:
          if (f.streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
          if (f.payload.length !== 5) throw new StreamError(f.streamId, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY of the wrong size");
          return;
        case FrameType.RST_STREAM:
          return this.onRstStream(f);
        case FrameType.SETTINGS:
          return this.onSettings(f);
        case FrameType.PUSH_PROMISE:
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
        case FrameType.PING:
          if (f.streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
          if (f.payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING of the wrong size");
          if ((f.flags & Flag.ACK) === 0) this.queue(frame(FrameType.PING, Flag.ACK, 0, f.payload));
          return;
        case FrameType.GOAWAY:
          if (f.streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
          this.peerGoaway = true;
          return this.endIfIdle();
        case FrameType.WINDOW_UPDATE:
          return this.onWindowUpdate(f);
        default:
          return; // unknown frame types are ignored
      }
    } catch (err) {
      if (!(err instanceof StreamError)) throw err;
      this.resetStream(err.streamId, err.code);
    }
  }

  private onData(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    if (f.streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on a stream never opened");
    const st = this.streams.get(f.streamId);
    const size = f.payload.length;
    if (st === undefined || st.closed) {
      // A stream we have answered or reset: the peer may still be sending.
      this.release(size);
      return;
    }
    if (st.remoteEnded) throw new StreamError(st.id, ErrorCode.STREAM_CLOSED, "DATA after the end of the request");
    st.received += size;
    st.held += size;
    if (st.received > this.limits.maxRequestBytes) throw new StreamError(st.id, ErrorCode.FLOW_CONTROL_ERROR, "request beyond the stream window");
    const data = unpad(f, 0);
    const end = (f.flags & Flag.END_STREAM) !== 0;
    if (end) st.remoteEnded = true;
    if (data.length > 0) st.onData?.(data);
    if (end && !st.closed) st.onEnd?.();
    if (end || st.closed) this.releaseStream(st);
  }

  private onHeaders(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    if (f.streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on a stream id a client may not use");
    const block = unpad(f, f.flags & Flag.PRIORITY ? 5 : 0);
    const endStream = (f.flags & Flag.END_STREAM) !== 0;
    if ((f.flags & Flag.END_HEADERS) === 0) {
      this.headerBlock = { streamId: f.streamId, endStream, parts: [Buffer.from(block)], size: block.length };
      return;
    }
    this.onHeaderBlock(f.streamId, endStream, block);
  }

  private onContinuation(f: Frame): void {
    const hb = this.headerBlock;
    if (hb === undefined) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    hb.size += f.payload.length;
    if (hb.size > MAX_HEADER_BLOCK) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${MAX_HEADER_BLOCK} bytes`);
    hb.parts.push(Buffer.from(f.payload));
    if ((f.flags & Flag.END_HEADERS) === 0) return;
    this.headerBlock = undefined;
    this.onHeaderBlock(hb.streamId, hb.endStream, Buffer.concat(hb.parts, hb.size));
  }

  private onHeaderBlock(id: number, endStream: boolean, block: Buffer): void {
    // Decoded whatever becomes of the stream: the table must stay in step.
    let fields: [string, string][];
    try {
      fields = this.decoder.decode(block).fields;
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, `header block: ${err.message}`);
      throw err;
    }
    const open = this.streams.get(id);
    if (open !== undefined) {
      // Trailers of a request: they must end it; their content is not used.
      if (!endStream || open.remoteEnded) throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "a second header block that does not end the request");
      open.remoteEnded = true;
      if (!open.closed) open.onEnd?.();
      this.releaseStream(open);
      return;
    }
    if (id <= this.lastStreamId) return; // a stream already closed: late frames are dropped
    this.lastStreamId = id;
    if (this.goawayAt !== undefined || this.peerGoaway) throw new StreamError(id, ErrorCode.REFUSED_STREAM, "the connection is closing");
    if (this.streams.size >= this.limits.maxConcurrentStreams) throw new StreamError(id, ErrorCode.REFUSED_STREAM, "too many streams");
    const headers = requestHeaders(id, fields);
    const st = new Stream(id, headers, this, this.peerInitialWindow);
    st.remoteEnded = endStream;
    this.streams.set(id, st);
    this.options.onStream(st);
    if (endStream && !st.closed) st.onEnd?.();
  }

  private onRstStream(f: Frame): void {
    if (f.streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (f.payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM of the wrong size");
    if (f.streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on a stream never opened");
    const st = this.streams.get(f.streamId);
    if (st === undefined) return;
    this.drop(st);
    st.onAbort?.();
  }

  private onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (f.flags & Flag.ACK) {
      if (f.payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (f.payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS of a size not a multiple of 6");
    for (let at = 0; at < f.payload.length; at += 6) {
      const id = f.payload.readUInt16BE(at);
      const value = f.payload.readUInt32BE(at + 2);
      switch (id) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH not 0 or 1");
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE above 2^31-1");
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const st of this.streams.values()) {
            st.sendWindow += delta;
            if (st.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "a stream window above 2^31-1");
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME || value > 0xffffff) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${value} out of range`);
          this.peerMaxFrame = value;
          break;
        default:
          break; // HEADER_TABLE_SIZE: we never index; others are not ours to act on
      }
    }
    this.queue(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.sendBlocked();
  }

  private onWindowUpdate(f: Frame): void {
    if (f.payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size");
    const inc = f.payload.readUInt32BE(0) & MAX_WINDOW;
    if (f.streamId === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window above 2^31-1");
    } else {
      if (f.streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on a stream never opened");
      const st = this.streams.get(f.streamId);
      if (st === undefined) return;
      if (inc === 0) throw new StreamError(st.id, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      st.sendWindow += inc;
      if (st.sendWindow > MAX_WINDOW) throw new StreamError(st.id, ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1");
    }
    this.sendBlocked();
  }

  // Writing.

  /** Called by Stream.respond. */
  respond(st: Stream, headers: Uint8Array, body: Uint8Array | undefined, trailers: Uint8Array | undefined): void {
    if (st.closed || this.gone) return;
    st.closed = true;
    // Called from the application's own callbacks, outside any read: a fault
    // here ends this connection, never the process.
    try {
      this.send(st, headers, body, trailers);
    } catch (err) {
      this.connectionError(err);
    }
  }

  private send(st: Stream, headers: Uint8Array, body: Uint8Array | undefined, trailers: Uint8Array | undefined): void {
    const max = this.peerMaxFrame;
    if (body === undefined) {
      const out = Buffer.allocUnsafe(headerBlockRoom(headers, max));
      this.finish(st, out.subarray(0, writeHeaderBlock(out, 0, st.id, headers, true, max)));
      return;
    }
    st.pending = { body, trailers };
    this.sendPending(st, headers);
    this.flush();
  }

  /**
   * Sends as much of a stream's pending response as the windows allow;
   * `headers`, the response's header block, goes first, in the same buffer
   * (an answer that fits the windows is one buffer, written as it is).
   */
  private sendPending(st: Stream, headers?: Uint8Array): void {
    const p = st.pending!;
    const max = this.peerMaxFrame;
    let body = p.body;
    const headersRoom = headers === undefined ? 0 : headerBlockRoom(headers, max);
    // Whole DATA frames, each within the frame size and both windows.
    let room = Math.min(st.sendWindow, this.connSendWindow, body.length);
    if (room > 0 || body.length === 0) {
      const frames = Math.max(1, Math.ceil(room / max));
      const trailersRoom = room === body.length && p.trailers !== undefined ? headerBlockRoom(p.trailers, max) : 0;
      const out = Buffer.allocUnsafe(headersRoom + room + frames * FRAME_HEADER + trailersRoom);
      let at = headers === undefined ? 0 : writeHeaderBlock(out, 0, st.id, headers, false, max);
      let sent = 0;
      do {
        const len = Math.min(max, room - sent);
        const last = sent + len === body.length;
        at = writeFrameHeader(out, at, len, FrameType.DATA, last && p.trailers === undefined ? Flag.END_STREAM : 0, st.id);
        out.set(body.subarray(sent, sent + len), at);
        at += len;
        sent += len;
      } while (sent < room);
      st.sendWindow -= room;
      this.connSendWindow -= room;
      body = body.subarray(room);
      if (body.length === 0) {
        if (p.trailers !== undefined) at = writeHeaderBlock(out, at, st.id, p.trailers, true, max);
        st.pending = undefined;
        this.blocked.delete(st);
        this.finish(st, out.subarray(0, at));
        return;
      }
      this.queue(out.subarray(0, at));
    } else if (headers !== undefined) {
      // No window for any of the body yet: the header block goes alone.
      const out = Buffer.allocUnsafe(headersRoom);
      this.queue(out.subarray(0, writeHeaderBlock(out, 0, st.id, headers, false, max)));
    }
    p.body = body;
    this.blocked.add(st);
  }

  private sendBlocked(): void {
    for (const st of this.blocked) {
      if (this.connSendWindow <= 0) break;
      if (st.sendWindow > 0) this.sendPending(st);
    }
  }

  /** The stream's last frames: after them it is done (and the request cut off if it has not ended). */
  private finish(st: Stream, last: Buffer): void {
    this.queue(last);
    if (!st.remoteEnded) this.queue(rstStreamFrame(st.id, ErrorCode.NO_ERROR));
    this.drop(st);
    this.flush();
    this.endIfIdle();
  }

  /** Resets a stream on our side (a stream error). */
  private resetStream(id: number, code: number): void {
    this.queue(rstStreamFrame(id, code));
    const st = this.streams.get(id);
    if (st === undefined) return;
    const answered = st.closed;
    this.drop(st);
    if (!answered) st.onAbort?.();
  }

  /** Forgets a stream, giving back what it held of the connection window. */
  private drop(st: Stream): void {
    st.closed = true;
    st.pending = undefined;
    this.blocked.delete(st);
    this.streams.delete(st.id);
    this.releaseStream(st);
  }

  private releaseStream(st: Stream): void {
    this.release(st.held);
    st.held = 0;
  }

  /** Gives consumed request bytes back to the peer's connection window, in steps of a quarter. */
  private release(bytes: number): void {
    this.released += bytes;
    if (this.released >= this.limits.connectionWindow / 4) {
      this.queue(windowUpdateFrame(0, this.released));
      this.released = 0;
    }
  }

  private endIfIdle(): void {
    if ((this.goawayAt !== undefined || this.peerGoaway) && this.streams.size === 0 && !this.gone) {
      this.flush();
      this.socket.end();
    }
  }

  private connectionError(err: unknown): void {
    const code = err instanceof ConnectionError ? err.code : ErrorCode.INTERNAL_ERROR;
    const message = err instanceof Error ? err.message : String(err);
    if (!this.gone) {
      this.out = [];
      this.socket.end(goawayFrame(this.lastStreamId, code, message));
    }
    this.fail(new Error(`HTTP/2: ${message}`));
  }

  /** The connection is gone: every open stream is aborted, once. */
  private fail(err: Error | undefined): void {
    if (this.gone) return;
    this.gone = true;
    this.out = [];
    const open = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const st of open) {
      const answered = st.closed;
      st.closed = true;
      if (!answered) st.onAbort?.();
    }
    if (err !== undefined) this.options.onError?.(err);
  }

  private queue(b: Buffer): void {
    this.out.push(b);
  }

  private write(b: Buffer): void {
    this.queue(b);
    this.flush();
  }

  /**
   * What reading produced (acknowledgements, resets, refusals) goes out after
   * the calls it started have run their synchronous part: an Attach usually
   * answers within it, and the acknowledgement of the PING grpc-go sends with
   * each request then shares the response's write instead of a write (and a
   * wake-up of the client) of its own.
   */
  private flushSoon(): void {
    if (this.flushScheduled || this.out.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.batching || this.out.length === 0 || this.gone) return;
    const out = this.out;
    this.out = [];
    this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }
}

/** Headers that make a request malformed in HTTP/2 (RFC 9113, 8.2.2). */
const CONNECTION_HEADERS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const PSEUDO = new Set([":method", ":scheme", ":path", ":authority"]);

/** The request's headers, checked as RFC 9113 section 8 asks; a malformed request is a stream error. */
function requestHeaders(id: number, fields: [string, string][]): Record<string, string> {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let regular = false;
  const malformed = (why: string): StreamError => new StreamError(id, ErrorCode.PROTOCOL_ERROR, `malformed request: ${why}`);
  for (const [name, value] of fields) {
    if (name.length === 0) throw malformed("empty header name");
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) throw malformed(`pseudo-header ${name} after a regular header`);
      if (!PSEUDO.has(name)) throw malformed(`unknown pseudo-header ${name}`);
      if (headers[name] !== undefined) throw malformed(`repeated ${name}`);
      headers[name] = value;
      continue;
    }
    regular = true;
    if (name !== name.toLowerCase()) throw malformed(`header name ${name} is not lowercase`);
    if (CONNECTION_HEADERS.has(name)) throw malformed(`connection-specific header ${name}`);
    if (name === "te" && value !== "trailers") throw malformed(`te: ${value}`);
    const had = headers[name];
    headers[name] = had === undefined ? value : `${had}, ${value}`;
  }
  if (headers[":method"] === undefined || headers[":path"] === undefined || headers[":scheme"] === undefined) {
    throw malformed("missing :method, :path or :scheme");
  }
  return headers;
}

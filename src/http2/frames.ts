// HTTP/2 frames (RFC 9113, section 4 and 6): the 9-byte header, the types,
// flags, error codes and settings this implementation uses, writers for
// the frames it sends, and a reader that cuts a byte stream into frames.

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME_HEADER = 9;
/** The frame size every peer accepts until it says otherwise. */
export const DEFAULT_MAX_FRAME = 16_384;
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 2 ** 31 - 1;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** A connection error: the connection ends with GOAWAY carrying `code`. */
export class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** A stream error: the stream ends with RST_STREAM carrying `code`. */
export class StreamError extends Error {
  constructor(
    readonly streamId: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Writes a frame header at out[at…]; returns the end. */
export function writeFrameHeader(out: Uint8Array, at: number, length: number, type: number, flags: number, streamId: number): number {
  out[at] = (length >>> 16) & 0xff;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out[at + 5] = (streamId >>> 24) & 0x7f;
  out[at + 6] = (streamId >>> 16) & 0xff;
  out[at + 7] = (streamId >>> 8) & 0xff;
  out[at + 8] = streamId & 0xff;
  return at + FRAME_HEADER;
}

/** A whole frame with its payload. */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  out.set(payload, FRAME_HEADER);
  return out;
}

export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], k) => {
    payload.writeUInt16BE(id, 6 * k);
    payload.writeUInt32BE(value, 6 * k + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(code, 0);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

export function goawayFrame(lastStreamId: number, code: number, debug = ""): Buffer {
  const text = Buffer.from(debug.slice(0, 200), "utf8");
  const payload = Buffer.allocUnsafe(8 + text.length);
  payload.writeUInt32BE(lastStreamId & MAX_WINDOW, 0);
  payload.writeUInt32BE(code, 4);
  payload.set(text, 8);
  return frame(FrameType.GOAWAY, 0, 0, payload);
}

/**
 * Writes a header block as HEADERS (and CONTINUATION frames when it is
 * larger than the peer's frame size) at out[at…]; returns the end.
 * `room(block, maxFrame)` gives the bytes needed.
 */
export function writeHeaderBlock(out: Uint8Array, at: number, streamId: number, block: Uint8Array, endStream: boolean, maxFrame: number): number {
  let from = 0;
  let type: number = FrameType.HEADERS;
  do {
    const len = Math.min(maxFrame, block.length - from);
    const last = from + len === block.length;
    const flags = (last ? Flag.END_HEADERS : 0) | (type === FrameType.HEADERS && endStream ? Flag.END_STREAM : 0);
    at = writeFrameHeader(out, at, len, type, flags, streamId);
    out.set(block.subarray(from, from + len), at);
    at += len;
    from += len;
    type = FrameType.CONTINUATION;
  } while (from < block.length);
  return at;
}

/** Bytes writeHeaderBlock needs for `block`. */
export function headerBlockRoom(block: Uint8Array, maxFrame: number): number {
  return block.length + FRAME_HEADER * Math.max(1, Math.ceil(block.length / maxFrame));
}

const EMPTY = new Uint8Array(0);

/** One frame as read; `payload` is valid only during the callback. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * Cuts a byte stream into frames. Feed it chunks as they arrive; it calls
 * `onFrame` for each whole frame and keeps a partial one for the next chunk.
 * A frame larger than `maxFrame` is a connection error (FRAME_SIZE_ERROR).
 */
export class FrameReader {
  private pending: Buffer | undefined;
  maxFrame = DEFAULT_MAX_FRAME;

  constructor(private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let at = 0;
    const f: Frame = { type: 0, flags: 0, streamId: 0, payload: buf };
    while (buf.length - at >= FRAME_HEADER) {
      const length = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
      if (length > this.maxFrame) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes, above the ${this.maxFrame} allowed`);
      if (buf.length - at < FRAME_HEADER + length) break;
      f.type = buf[at + 3]!;
      f.flags = buf[at + 4]!;
      f.streamId = buf.readUInt32BE(at + 5) & MAX_WINDOW;
      f.payload = buf.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length);
      at += FRAME_HEADER + length;
      this.onFrame(f);
    }
    // Keep the partial frame (copied: the chunk's buffer may be reused).
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }
}

/** A frame's payload without its padding (PADDED flag), and for HEADERS without its priority fields. */
export function unpad(f: Frame, priorityBytes: number): Buffer {
  let p = f.payload;
  let pad = 0;
  if (f.flags & Flag.PADDED) {
    if (p.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame without its pad length");
    pad = p[0]!;
    p = p.subarray(1);
  }
  if (p.length < priorityBytes + pad) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
  return p.subarray(priorityBytes, p.length - pad);
}

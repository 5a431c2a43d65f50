// The framing between the CNI forwarder (native/cni/workloadnet-cni.c) and the
// daemon, on the daemon's unix socket. Big-endian u32 lengths, every length
// capped; nothing is interpreted here beyond the frame.
//
// request  = MAGIC envLen:u32 stdinLen:u32 env[envLen] stdin[stdinLen]
//            env = ("KEY=VALUE" NUL)*   (only the CNI_* variables the plugin got)
// response = MAGIC exitCode:u32 stdoutLen:u32 stderrLen:u32 stdout stderr
//
// The C side defines the same constants; keep them in step.

export const MAGIC = Buffer.from("WKCNI/1\n", "latin1");
export const MAX_ENV_BYTES = 64 * 1024;
export const MAX_STDIN_BYTES = 1024 * 1024;
export const MAX_STDOUT_BYTES = 1024 * 1024;
export const MAX_STDERR_BYTES = 64 * 1024;
/** Bytes after the magic before the variable parts of a request. */
export const REQUEST_HEADER_BYTES = 8;

export interface CniRequest {
  /** The forwarded variables; absent ones are not keys. */
  env: Map<string, string>;
  stdin: Buffer;
}

export interface CniReply {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FramingError";
  }
}

/** The lengths announced by a request header (the 8 bytes after the magic). */
export function parseRequestHeader(header: Buffer): { envLen: number; stdinLen: number } {
  if (header.length < REQUEST_HEADER_BYTES) throw new FramingError("short request header");
  const envLen = header.readUInt32BE(0);
  const stdinLen = header.readUInt32BE(4);
  if (envLen > MAX_ENV_BYTES) throw new FramingError(`environment block of ${envLen} bytes is over the ${MAX_ENV_BYTES}-byte limit`);
  if (stdinLen > MAX_STDIN_BYTES) throw new FramingError(`network config of ${stdinLen} bytes is over the ${MAX_STDIN_BYTES}-byte limit`);
  return { envLen, stdinLen };
}

/** Splits the NUL-terminated KEY=VALUE entries. Later duplicates win, as in an environment. */
export function parseEnvBlock(block: Buffer): Map<string, string> {
  const env = new Map<string, string>();
  let start = 0;
  while (start < block.length) {
    const end = block.indexOf(0, start);
    if (end < 0) throw new FramingError("environment block does not end with NUL");
    const entry = block.toString("utf8", start, end);
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new FramingError(`environment entry without a name: ${JSON.stringify(entry.slice(0, 40))}`);
    env.set(entry.slice(0, eq), entry.slice(eq + 1));
    start = end + 1;
  }
  return env;
}

/** Builds a request as the C forwarder does (used by tests and tools). */
export function encodeRequest(req: CniRequest): Buffer {
  const env = Buffer.concat([...req.env].map(([k, v]) => Buffer.from(`${k}=${v}\0`, "utf8")));
  const header = Buffer.alloc(REQUEST_HEADER_BYTES);
  header.writeUInt32BE(env.length, 0);
  header.writeUInt32BE(req.stdin.length, 4);
  return Buffer.concat([MAGIC, header, env, req.stdin]);
}

export function encodeReply(reply: CniReply): Buffer {
  const stdout = reply.stdout.subarray(0, MAX_STDOUT_BYTES);
  const stderr = reply.stderr.subarray(0, MAX_STDERR_BYTES);
  const header = Buffer.alloc(12);
  header.writeUInt32BE(reply.exitCode >>> 0, 0);
  header.writeUInt32BE(stdout.length, 4);
  header.writeUInt32BE(stderr.length, 8);
  return Buffer.concat([MAGIC, header, stdout, stderr]);
}

/** Parses a whole reply (used by tests and tools; the C side has its own reader). */
export function decodeReply(buf: Buffer): CniReply {
  if (buf.length < MAGIC.length + 12 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new FramingError("not a workloadnet CNI reply");
  const exitCode = buf.readUInt32BE(MAGIC.length);
  const outLen = buf.readUInt32BE(MAGIC.length + 4);
  const errLen = buf.readUInt32BE(MAGIC.length + 8);
  const body = MAGIC.length + 12;
  if (buf.length !== body + outLen + errLen) throw new FramingError("reply length does not match its header");
  return { exitCode, stdout: buf.subarray(body, body + outLen), stderr: buf.subarray(body + outLen) };
}

// One error class for the whole service: a gRPC-style code plus a message a
// person understands, and the underlying cause for the logs.

/** The gRPC status codes the service uses (numbers as on the wire). */
export enum StatusCode {
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
}

export class ServiceError extends Error {
  constructor(
    readonly code: StatusCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ServiceError";
  }
}

// CNI errors: the spec's well-known codes, our plugin-specific ones (100+), and
// the mapping from the service's gRPC-style codes. A CniError is printed on
// stdout as the spec's error object and the plugin exits 1.
import { ServiceError, StatusCode } from "../service/errors.js";

/** Error codes of the CNI spec (v1.1, "Error" section). */
export enum CniCode {
  IncompatibleVersion = 1,
  UnsupportedField = 2,
  UnknownContainer = 3,
  InvalidEnvironment = 4,
  IoFailure = 5,
  DecodingFailure = 6,
  InvalidNetworkConfig = 7,
  TryAgainLater = 11,
  PluginNotAvailable = 50,
  // Plugin-specific (100 and up).
  /** The daemon failed in a way it did not expect; its log has the details. */
  Internal = 100,
  /** The node's pod prefixes have no free address. */
  AddressesExhausted = 101,
  /** The attachment is not as it was made (CHECK), or an interface is not ours to touch. */
  AttachmentMismatch = 102,
  /** The daemon refused the caller (peer credentials). */
  PermissionDenied = 103,
}

export class CniError extends Error {
  constructor(
    readonly code: CniCode,
    message: string,
    readonly details = "",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CniError";
  }

  /** The spec's error object. */
  toJson(cniVersion: string): Record<string, unknown> {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/**
 * The CNI code for a service failure.
 *
 * - INVALID_ARGUMENT → 4: every input the service validates came from the
 *   CNI_* variables (container id, netns, ifname) or K8S_POD_UID in CNI_ARGS.
 * - NOT_FOUND → 3: the namespace or attachment does not exist.
 * - ALREADY_EXISTS → 11: the workload is attached already, normally by an
 *   earlier sandbox of the same pod whose DEL has not happened yet; once the
 *   runtime cleans that up, a retry succeeds.
 * - UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, CANCELLED → 11 (transient).
 * - RESOURCE_EXHAUSTED → 101, FAILED_PRECONDITION → 102,
 *   PERMISSION_DENIED → 103, anything else → 100.
 */
export function cniCodeOf(code: StatusCode): CniCode {
  switch (code) {
    case StatusCode.InvalidArgument:
      return CniCode.InvalidEnvironment;
    case StatusCode.NotFound:
      return CniCode.UnknownContainer;
    case StatusCode.AlreadyExists:
    case StatusCode.Unavailable:
    case StatusCode.Aborted:
    case StatusCode.DeadlineExceeded:
    case StatusCode.Cancelled:
      return CniCode.TryAgainLater;
    case StatusCode.ResourceExhausted:
      return CniCode.AddressesExhausted;
    case StatusCode.FailedPrecondition:
      return CniCode.AttachmentMismatch;
    case StatusCode.PermissionDenied:
      return CniCode.PermissionDenied;
    default:
      return CniCode.Internal;
  }
}

/** Turns whatever a service call threw into a CniError with a message a person understands. */
export function toCniError(err: unknown, what: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof ServiceError) {
    if (err.code === StatusCode.Internal || err.code === StatusCode.Unknown) {
      return new CniError(CniCode.Internal, `${what}: internal error in workloadnetd: ${err.message}`, "see the workloadnetd log", { cause: err });
    }
    return new CniError(cniCodeOf(err.code), `${what}: ${err.message}`, "", { cause: err });
  }
  return new CniError(CniCode.Internal, `${what}: internal error in workloadnetd`, "see the workloadnetd log", { cause: err });
}

// The Kubernetes source of the cluster view. Importing this module costs
// nothing: the client library is loaded by createKubernetesSource only, so
// the daemon's other modes start as fast as without it.

import type { KubernetesSource, KubernetesSourceOptions } from "./kubernetes-source.js";

export type { KubernetesSource, KubernetesSourceOptions, KubernetesSourceStats } from "./kubernetes-source.js";

/**
 * Loads the client and its configuration (a kubeconfig, or the pod's
 * service-account credentials) and returns the source, not yet started.
 * Throws an Error saying what is missing when there are no usable credentials.
 */
export async function createKubernetesSource(opts: KubernetesSourceOptions): Promise<KubernetesSource> {
  const [k8s, { KubernetesSource: Source }] = await Promise.all([import("@kubernetes/client-node"), import("./kubernetes-source.js")]);
  return new Source(k8s, opts);
}

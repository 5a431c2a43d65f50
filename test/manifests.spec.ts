// The Kubernetes manifests (deploy/kubernetes/): every object is checked
// against the Kubernetes API's schema offline (the validators generated from
// the API's OpenAPI document, package kubernetes-models), then against what
// the daemon needs: read-only RBAC on nodes, every node, host network, the
// two capabilities, probes on the daemon's metrics address, the CNI
// directories and the namespace directory mounted where the flags say.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { parseConfig, type DaemonConfig } from "../src/cli/config.js";

const DIR = fileURLToPath(new URL("../../deploy/kubernetes/", import.meta.url));

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

function load(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), "utf8"));
  return docs.map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return d.toJS() as K8sObject;
  });
}

const manifestFiles = readdirSync(DIR).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
const objects = manifestFiles.flatMap((f) => load(f).map((o) => ({ file: f, o })));
const find = (kind: string): K8sObject => {
  const found = objects.filter(({ o }) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!.o;
};

/** The model class of an apiVersion/kind, e.g. apps/v1 DaemonSet → kubernetes-models/apps/v1/DaemonSet. */
async function validateAgainstSchema(o: K8sObject): Promise<void> {
  const module = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[o.kind];
  assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

/** The manifests are read as plain data; the schema check above is what types them. */
type Any = any;

describe("Kubernetes manifests", () => {
  it("the kustomization lists exactly the manifest files", () => {
    const [k] = load("kustomization.yaml") as Any[];
    assert.equal(k.apiVersion, "kustomize.config.k8s.io/v1beta1");
    assert.equal(k.kind, "Kustomization");
    assert.deepEqual([...k.resources].sort(), manifestFiles);
  });

  it("every object is valid against the Kubernetes API schema", async () => {
    assert.ok(objects.length >= 4);
    for (const { file, o } of objects) {
      await assert.doesNotReject(validateAgainstSchema(o), `${file}: ${o.kind} ${o.metadata?.name}`);
    }
  });

  it("the schema check does catch a wrong object (a control)", async () => {
    const ds = structuredClone(find("DaemonSet")) as Any;
    ds.spec.template.spec.containers[0].securityContext.capabilities.add = "NET_ADMIN";
    await assert.rejects(validateAgainstSchema(ds), /capabilities\/add must be array/);
    const noPort = structuredClone(find("DaemonSet")) as Any;
    delete noPort.spec.template.spec.containers[0].livenessProbe.httpGet.port;
    await assert.rejects(validateAgainstSchema(noPort), /httpGet must have required property port/);
  });

  it("RBAC: read-only, on nodes only, bound to the DaemonSet's service account", () => {
    const role = find("ClusterRole") as Any;
    assert.deepEqual(role.rules, [{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] }]);
    const sa = find("ServiceAccount");
    const binding = find("ClusterRoleBinding") as Any;
    assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name });
    assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace }]);
    const ds = find("DaemonSet") as Any;
    assert.equal(ds.spec.template.spec.serviceAccountName, sa.metadata.name);
    assert.equal(ds.metadata.namespace, sa.metadata.namespace);
  });

  it("DaemonSet: every node, host network, one node at a time, resource requests", () => {
    const ds = find("DaemonSet") as Any;
    const pod = ds.spec.template.spec;
    assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
    // A toleration with operator Exists and no key tolerates every taint (control plane, NotReady).
    assert.ok(pod.tolerations.some((t: Any) => t.operator === "Exists" && t.key === undefined && t.effect === undefined));
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
    assert.deepEqual(ds.spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    const c = pod.containers[0];
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
    assert.deepEqual(c.env, [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }]);
  });

  it("DaemonSet: only NET_ADMIN and SYS_ADMIN, not privileged, and nothing the API server refuses", () => {
    const c = (find("DaemonSet") as Any).spec.template.spec.containers[0];
    const sc = c.securityContext;
    assert.notEqual(sc.privileged, true);
    assert.deepEqual(sc.capabilities, { drop: ["ALL"], add: ["NET_ADMIN", "SYS_ADMIN"] });
    // The API server refuses allowPrivilegeEscalation: false with CAP_SYS_ADMIN added (and it would mean nothing).
    assert.notEqual(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.seccompProfile.type, "RuntimeDefault");
  });

  it("DaemonSet: flags the daemon accepts; probes, socket, CNI directories and namespaces where the flags say", () => {
    const pod = (find("DaemonSet") as Any).spec.template.spec;
    const c = pod.containers[0];
    const config = daemonConfig(c.args.map((a: string) => a.replace("$(NODE_NAME)", "node-1")));

    const mounts = new Map<string, Any>(c.volumeMounts.map((m: Any) => [m.mountPath, m]));
    const volumes = new Map<string, Any>(pod.volumes.map((v: Any) => [v.name, v]));
    for (const m of c.volumeMounts) assert.ok(volumes.has(m.name), `volume ${m.name} exists`);
    // Host paths seen at the same paths inside: the conflist names the socket as the host's plugin sees it.
    for (const m of c.volumeMounts) assert.equal(volumes.get(m.name).hostPath.path, m.mountPath);

    assert.ok(mounts.has(config.cniBinDir!), "--cni-bin-dir is a host directory");
    assert.ok(mounts.has(config.cniConfDir!), "--cni-conf-dir is a host directory");
    assert.ok(mounts.has(config.socketPath.slice(0, config.socketPath.lastIndexOf("/"))), "the socket's directory is the host's");
    assert.equal(mounts.get("/var/run/netns")?.mountPropagation, "HostToContainer");

    assert.equal(config.kubernetes, true, "the cluster view from the Node objects");
    assert.equal(config.nodeName, "node-1");
    assert.deepEqual(config.metricsAddress, { host: "127.0.0.1", port: 9650 });
    for (const [probe, path] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]] as const) {
      assert.deepEqual(c[probe].httpGet, { host: "127.0.0.1", path, port: 9650 }, probe);
    }
    assert.equal(c.command[0], "/opt/workloadnet/bin/workloadnetd", "started through the launcher (the image's Node.js)");
  });
});

/** The args through the daemon's own parser (a DaemonSet pod has NODE_NAME from the downward API). */
function daemonConfig(args: string[]): DaemonConfig {
  return parseConfig(args, { NODE_NAME: "node-1" });
}

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  HelpRequested,
  checkCidrSyntax,
  parseConfig,
  type DaemonConfig,
  type ParseConfigOptions,
} from "./config.js";

const groups: Record<string, number> = { containerd: 1234, root: 0 };
const opts: ParseConfigOptions = { lookupGroup: (name) => groups[name], hostname: () => "Node-A" };

function parse(argv: string[], env: NodeJS.ProcessEnv = {}, options: ParseConfigOptions = opts): DaemonConfig {
  return parseConfig(argv, env, options);
}

/** Asserts a ConfigError with exactly this one-line message. */
function fails(argv: string[], message: string | RegExp, env: NodeJS.ProcessEnv = {}, options = opts): void {
  assert.throws(
    () => parse(argv, env, options),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.doesNotMatch(err.message, /\n/);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

/** A config file read through the injected reader. */
function withFile(content: string): ParseConfigOptions {
  return { ...opts, readFile: (p) => (p === "/etc/wl.json" ? content : fsError(p)) };
}
function fsError(p: string): never {
  throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: "ENOENT" });
}

describe("defaults and flags", () => {
  test("no arguments gives the defaults", () => {
    assert.deepEqual(parse([]), {
      socketPath: "/run/workloadnet/workloadnet.sock",
      ipv4Prefix: undefined,
      ipv6Prefix: undefined,
      prefixFile: undefined,
      mtu: undefined,
      linkGroup: 8,
      vethQueues: 1,
      warmUp: 8,
      logLevel: "info",
      detachMode: "sync",
      metricsAddress: undefined,
      socketGroup: undefined,
      cniStateFile: undefined,
      cniBinDir: undefined,
      cniConfDir: undefined,
      kubernetes: false,
      kubeconfig: undefined,
      nodeName: "node-a",
      routing: "auto",
      vxlanVni: 7701,
      vxlanPort: 4789,
      resyncInterval: 30,
      masquerade: true,
      clusterCidrs: [],
      noMasqueradeCidrs: [],
      configFile: undefined,
    });
  });

  test("every flag, in both --flag value and --flag=value forms", () => {
    const config = parse([
      "--socket", "/run/wl/api.sock",
      "--ipv4-prefix=10.88.0.0/24",
      "--ipv6-prefix", "fd00:88::/64",
      "--prefix-file", "/etc/workloadnet/prefixes",
      "--mtu", "1400",
      "--link-group=42",
      "--veth-queues", "4",
      "--warm-up", "0",
      "--log-level", "debug",
      "--detach-mode=deferred",
      "--metrics-address", "[::1]:9650",
      "--socket-group", "containerd",
      "--cni-state-file=/var/lib/workloadnet/cni.json",
      "--cni-bin-dir", "/opt/cni/bin",
      "--cni-conf-dir=/etc/cni/net.d",
      "--kubernetes",
      "--node-name", "worker-1.example",
      "--routing=vxlan",
      "--vxlan-vni", "42",
      "--vxlan-port", "8472",
      "--resync-interval", "5",
      "--masquerade=false",
      "--cluster-cidr", "10.88.0.0/16",
      "--cluster-cidr=fd00:88::/48",
      "--no-masquerade-cidr", "192.168.0.0/16",
    ]);
    assert.deepEqual(config, {
      socketPath: "/run/wl/api.sock",
      ipv4Prefix: "10.88.0.0/24",
      ipv6Prefix: "fd00:88::/64",
      prefixFile: "/etc/workloadnet/prefixes",
      mtu: 1400,
      linkGroup: 42,
      vethQueues: 4,
      warmUp: 0,
      logLevel: "debug",
      detachMode: "deferred",
      metricsAddress: { host: "::1", port: 9650 },
      socketGroup: 1234,
      cniStateFile: "/var/lib/workloadnet/cni.json",
      cniBinDir: "/opt/cni/bin",
      cniConfDir: "/etc/cni/net.d",
      kubernetes: true,
      kubeconfig: undefined,
      nodeName: "worker-1.example",
      routing: "vxlan",
      vxlanVni: 42,
      vxlanPort: 8472,
      resyncInterval: 5,
      masquerade: false,
      clusterCidrs: ["10.88.0.0/16", "fd00:88::/48"],
      noMasqueradeCidrs: ["192.168.0.0/16"],
      configFile: undefined,
    });
  });

  test("cluster settings: --kubeconfig implies --kubernetes; the node name from $NODE_NAME, else the host name", () => {
    const c = parse(["--kubeconfig", "/etc/kubernetes/kubelet.conf"]);
    assert.equal(c.kubernetes, true);
    assert.equal(c.kubeconfig, "/etc/kubernetes/kubelet.conf");
    assert.equal(parse([], { NODE_NAME: "from-downward-api" }).nodeName, "from-downward-api");
    assert.equal(parse(["--node-name", "flag"], { NODE_NAME: "env" }).nodeName, "flag");
    assert.equal(parse([], { WORKLOADNETD_NODE_NAME: "ours", NODE_NAME: "env" }).nodeName, "ours");
    assert.equal(parse([], { WORKLOADNETD_KUBERNETES: "true" }).kubernetes, true);
    assert.equal(parse([], { WORKLOADNETD_KUBERNETES: "0" }).kubernetes, false);
    assert.equal(parse([], { WORKLOADNETD_ROUTING: "none" }).routing, "none");
    assert.equal(parse(["--mtu", "1400"]).mtu, 1400);
    fails(["--routing", "bgp"], 'invalid --routing "bgp": must be one of auto, direct, vxlan, none');
    fails(["--vxlan-vni", "16777216"], 'invalid --vxlan-vni "16777216": must be an integer between 1 and 16777215');
    fails(["--vxlan-port", "0"], 'invalid --vxlan-port "0": must be an integer between 1 and 65535');
    fails(["--node-name", "Node_A"], /^invalid --node-name "Node_A": must be a node name/);
    fails(["--kubeconfig", "kube.conf"], 'invalid --kubeconfig "kube.conf": must be an absolute path');
    fails([], 'invalid WORKLOADNETD_KUBERNETES "maybe": must be true or false', { WORKLOADNETD_KUBERNETES: "maybe" });
    fails(["--kubernetes=yes"], /kubernetes/);
  });

  test("masquerade and its exemptions: a boolean, and repeatable prefixes from flags, environment and file", () => {
    assert.equal(parse(["--masquerade", "false"]).masquerade, false);
    assert.equal(parse([], { WORKLOADNETD_MASQUERADE: "false" }).masquerade, false);
    assert.throws(() => parse(["--masquerade=maybe"]), (e: Error) => e instanceof ConfigError && e.message === 'invalid --masquerade "maybe": must be true or false');
    assert.deepEqual(parse([], { WORKLOADNETD_CLUSTER_CIDR: "10.88.0.0/16, fd00:88::/48" }).clusterCidrs, ["10.88.0.0/16", "fd00:88::/48"]);
    assert.deepEqual(parse(["--no-masquerade-cidr", "10.0.0.0/8", "--no-masquerade-cidr", "172.16.0.0/12"]).noMasqueradeCidrs, ["10.0.0.0/8", "172.16.0.0/12"]);
    assert.throws(() => parse(["--cluster-cidr", "10.88.0.1/16"]), (e: Error) => e instanceof ConfigError && /invalid --cluster-cidr "10\.88\.0\.1\/16": .*host bits set/.test(e.message));
    assert.throws(() => parse(["--no-masquerade-cidr", "nonsense"]), (e: Error) => e instanceof ConfigError && e.message.startsWith('invalid --no-masquerade-cidr "nonsense"'));
  });

  test("the last of a repeated flag wins", () => {
    assert.equal(parse(["--mtu", "1400", "--mtu", "9000"]).mtu, 9000);
  });

  test("--help gives the help text instead of a config", () => {
    assert.throws(
      () => parse(["--help"]),
      (err: unknown) => err instanceof HelpRequested && /--ipv4-prefix <cidr>/.test(err.text) && /WORKLOADNETD_/.test(err.text),
    );
  });
});

describe("bad values give one-line ConfigErrors naming the flag and value", () => {
  test("mtu", () => {
    fails(["--mtu", "abc"], 'invalid --mtu "abc": must be an integer between 68 and 65535');
    for (const bad of ["67", "65536", "1.5", "-1", "", " 1500", "1e3", "0x5dc"]) {
      fails([`--mtu=${bad}`], `invalid --mtu ${JSON.stringify(bad)}: must be an integer between 68 and 65535`);
    }
    assert.equal(parse(["--mtu", "68"]).mtu, 68);
    assert.equal(parse(["--mtu", "65535"]).mtu, 65535);
  });

  test("link group", () => {
    fails(["--link-group", "0"], 'invalid --link-group "0": must be an integer between 1 and 4294967295');
    fails(["--link-group", "4294967296"], /^invalid --link-group "4294967296": /);
    assert.equal(parse(["--link-group", "4294967295"]).linkGroup, 4294967295);
    assert.equal(parse(["--link-group", "1"]).linkGroup, 1);
  });

  test("veth queues", () => {
    fails(["--veth-queues", "0"], 'invalid --veth-queues "0": must be an integer between 1 and 4096');
    fails(["--veth-queues", "4097"], /^invalid --veth-queues "4097": /);
    assert.equal(parse(["--veth-queues", "4096"]).vethQueues, 4096);
    assert.equal(parse([], { WORKLOADNETD_VETH_QUEUES: "3" }).vethQueues, 3);
  });

  test("warm-up", () => {
    fails(["--warm-up", "-1"], 'invalid --warm-up "-1": must be an integer between 0 and 1000');
    fails(["--warm-up", "1001"], /^invalid --warm-up "1001": /);
    assert.equal(parse(["--warm-up", "0"]).warmUp, 0);
    assert.equal(parse([], { WORKLOADNETD_WARM_UP: "32" }).warmUp, 32);
  });

  test("log level", () => {
    const hostPortReason = "must be HOST:PORT with an IP address or localhost, e.g. 127.0.0.1:9650 or [::1]:9650";
    for (const bad of ["9650", "0.0.0.0", "300.1.1.1:80", "[::1]", "[zz::1]:80", "localhost:0", "localhost:70000", "example.com:80"]) {
      fails(["--metrics-address", bad], `invalid --metrics-address ${JSON.stringify(bad)}: ${hostPortReason}`);
    }
    fails(["--detach-mode", "lazy"], 'invalid --detach-mode "lazy": must be one of sync, deferred');
    fails(["--cni-state-file", "cni.json"], 'invalid --cni-state-file "cni.json": must be an absolute path');
    fails(["--cni-bin-dir", "opt/cni/bin"], 'invalid --cni-bin-dir "opt/cni/bin": must be an absolute path');
    fails(["--log-level", "verbose"], 'invalid --log-level "verbose": must be one of trace, debug, info, warn, error, fatal');
    fails(["--log-level", "INFO"], /^invalid --log-level "INFO": /);
    for (const level of ["trace", "debug", "info", "warn", "error", "fatal"]) {
      assert.equal(parse(["--log-level", level]).logLevel, level);
    }
  });

  test("IPv4 prefix", () => {
    for (const good of ["10.88.0.0/24", "0.0.0.0/0", "192.168.1.0/32"]) {
      assert.equal(parse(["--ipv4-prefix", good]).ipv4Prefix, good);
    }
    fails(["--ipv4-prefix", "10.88.0.0"], 'invalid --ipv4-prefix "10.88.0.0": must be an IPv4 prefix such as 10.88.0.0/24');
    fails(["--ipv4-prefix", "10.88.0.0/33"], 'invalid --ipv4-prefix "10.88.0.0/33": prefix length must be an integer between 0 and 32');
    fails(["--ipv4-prefix", "fd00::/64"], 'invalid --ipv4-prefix "fd00::/64": is an IPv6 prefix; must be an IPv4 prefix such as 10.88.0.0/24');
    for (const bad of ["10.88.0.256/24", "10.88.0/24", "10.88.0.0/24/1", "10.88.0.0/", "10.88.0.0/024", "10.88.0.0/+8", " 10.88.0.0/24", "x"]) {
      fails(["--ipv4-prefix", bad], new RegExp(`^invalid --ipv4-prefix ${JSON.stringify(bad).replace(/[.+/]/g, "\\$&")}: `));
    }
  });

  test("IPv6 prefix", () => {
    for (const good of ["fd00:88::/64", "::/0", "2001:db8::1/128", "::ffff:10.0.0.0/120"]) {
      assert.equal(parse(["--ipv6-prefix", good]).ipv6Prefix, good);
    }
    fails(["--ipv6-prefix", "10.88.0.0/24"], 'invalid --ipv6-prefix "10.88.0.0/24": is an IPv4 prefix; must be an IPv6 prefix such as fd00:88::/64');
    fails(["--ipv6-prefix", "fd00::/129"], 'invalid --ipv6-prefix "fd00::/129": prefix length must be an integer between 0 and 128');
    fails(["--ipv6-prefix", "fe80::%eth0/64"], /^invalid --ipv6-prefix "fe80::%eth0\/64": must be an IPv6 prefix/);
    fails(["--ipv6-prefix", "fd00:::/64"], /^invalid --ipv6-prefix /);
  });

  test("checkCidrSyntax on its own", () => {
    assert.equal(checkCidrSyntax("10.0.0.0/8", 4), undefined);
    assert.equal(checkCidrSyntax("fd00::/8", 6), undefined);
    assert.match(checkCidrSyntax("fd00::/8", 4)!, /IPv6 prefix/);
  });

  test("socket and prefix file paths", () => {
    fails(["--socket", "relative.sock"], 'invalid --socket "relative.sock": must be an absolute path');
    fails(["--socket", ""], 'invalid --socket "": must be an absolute path');
    fails(["--socket", "/run/wl/"], 'invalid --socket "/run/wl/": must name a file, not a directory');
    const long = "/" + "a".repeat(107);
    fails(["--socket", long], /^invalid --socket "\/a+…: is 108 bytes long; a unix socket path can have at most 107$/);
    assert.equal(parse(["--socket", "/" + "a".repeat(106)]).socketPath.length, 107);
    fails(["--prefix-file", "prefixes.json"], 'invalid --prefix-file "prefixes.json": must be an absolute path');
  });

  test("socket group by name or gid", () => {
    assert.equal(parse(["--socket-group", "root"]).socketGroup, 0);
    assert.equal(parse(["--socket-group", "1001"]).socketGroup, 1001);
    fails(["--socket-group", "nosuchgroup"], 'invalid --socket-group "nosuchgroup": no such group');
    fails(["--socket-group", "4294967295"], 'invalid --socket-group "4294967295": must be a group name or a gid between 0 and 4294967294');
    fails(["--socket-group", "bad name"], /^invalid --socket-group "bad name": must be a group name/);
  });

  test("the real group lookup finds root", () => {
    assert.equal(parseConfig(["--socket-group", "root"], {}).socketGroup, 0);
  });

  test("a value with a newline is shown escaped, keeping the message on one line", () => {
    fails(["--log-level", "info\nfatal"], 'invalid --log-level "info\\nfatal": must be one of trace, debug, info, warn, error, fatal');
  });

  test("unknown flags, missing values and extra arguments", () => {
    fails(["--mut", "1400"], /^unknown option '--mut'/);
    fails(["--mtu"], /^option '--mtu <n>' argument missing$/);
    fails(["serve"], /^too many arguments/);
  });
});

describe("environment variables", () => {
  test("override defaults and the file, and are overridden by flags", () => {
    const env = { WORKLOADNETD_MTU: "1450", WORKLOADNETD_LOG_LEVEL: "warn", PATH: "/bin" };
    const config = parse(["--log-level", "error"], env, withFile('{"mtu": 1400, "link-group": 9}'));
    assert.equal(config.mtu, 1450);
    assert.equal(config.logLevel, "error");
    assert.equal(parse([], { WORKLOADNETD_MTU: "1450", WORKLOADNETD_CONFIG: "/etc/wl.json" }, withFile('{"mtu": 1400, "link-group": 9}')).linkGroup, 9);
  });

  test("bad values name the variable; unknown names are refused; empty means unset", () => {
    fails([], 'invalid WORKLOADNETD_MTU "big": must be an integer between 68 and 65535', { WORKLOADNETD_MTU: "big" });
    fails([], /^unknown environment variable WORKLOADNETD_MTUU; known: /, { WORKLOADNETD_MTUU: "1" });
    assert.equal(parse([], { WORKLOADNETD_MTU: "" }).mtu, undefined);
  });
});

describe("config file", () => {
  test("kebab-case keys like the flags; flags override the file", () => {
    const file = withFile(
      JSON.stringify({
        socket: "/run/x/x.sock",
        "ipv4-prefix": "10.88.0.0/24",
        "ipv6-prefix": "fd00:88::/64",
        "prefix-file": "/etc/p.json",
        mtu: 1400,
        "link-group": "9",
        "veth-queues": 2,
        "warm-up": 5,
        "log-level": "warn",
        "detach-mode": "sync",
        "metrics-address": "127.0.0.1:9650",
        "socket-group": 1234,
        "cni-state-file": "/var/lib/wl/cni.json",
        "cni-bin-dir": "/opt/cni/bin",
        "cni-conf-dir": "/etc/cni/net.d",
        kubernetes: true,
        "node-name": "n1",
        routing: "direct",
        "vxlan-vni": 9,
        "vxlan-port": "4790",
      }),
    );
    assert.deepEqual(parse(["--config", "/etc/wl.json"], {}, file), {
      socketPath: "/run/x/x.sock",
      ipv4Prefix: "10.88.0.0/24",
      ipv6Prefix: "fd00:88::/64",
      prefixFile: "/etc/p.json",
      mtu: 1400,
      linkGroup: 9,
      vethQueues: 2,
      warmUp: 5,
      logLevel: "warn",
      detachMode: "sync",
      metricsAddress: { host: "127.0.0.1", port: 9650 },
      socketGroup: 1234,
      cniStateFile: "/var/lib/wl/cni.json",
      cniBinDir: "/opt/cni/bin",
      cniConfDir: "/etc/cni/net.d",
      kubernetes: true,
      kubeconfig: undefined,
      nodeName: "n1",
      routing: "direct",
      vxlanVni: 9,
      vxlanPort: 4790,
      resyncInterval: 30,
      masquerade: true,
      clusterCidrs: [],
      noMasqueradeCidrs: [],
      configFile: "/etc/wl.json",
    });
    const overridden = parse(["--config", "/etc/wl.json", "--mtu", "9000", "--ipv4-prefix", "10.1.0.0/16"], {}, file);
    assert.equal(overridden.mtu, 9000);
    assert.equal(overridden.ipv4Prefix, "10.1.0.0/16");
    assert.equal(overridden.ipv6Prefix, "fd00:88::/64");
  });

  test("a real file on disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "wln-config-"));
    try {
      const path = join(dir, "workloadnetd.json");
      writeFileSync(path, '{"ipv4-prefix": "10.88.0.0/24", "mtu": 1400}\n');
      const config = parseConfig(["--config", path], {});
      assert.equal(config.ipv4Prefix, "10.88.0.0/24");
      assert.equal(config.mtu, 1400);
      assert.equal(config.configFile, path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("bad values name the file, the key and the value", () => {
    fails(["--config", "/etc/wl.json"], '/etc/wl.json: invalid "mtu" 70000: must be an integer between 68 and 65535', {}, withFile('{"mtu": 70000}'));
    fails(["--config", "/etc/wl.json"], '/etc/wl.json: invalid "mtu" 1400.5: must be an integer between 68 and 65535', {}, withFile('{"mtu": 1400.5}'));
    fails(["--config", "/etc/wl.json"], '/etc/wl.json: invalid "mtu" true: must be an integer between 68 and 65535', {}, withFile('{"mtu": true}'));
    fails(["--config", "/etc/wl.json"], '/etc/wl.json: invalid "ipv4-prefix" 10: must be an IPv4 prefix such as 10.88.0.0/24', {}, withFile('{"ipv4-prefix": 10}'));
    fails(["--config", "/etc/wl.json"], '/etc/wl.json: invalid "log-level" null: must be one of trace, debug, info, warn, error, fatal', {}, withFile('{"log-level": null}'));
  });

  test("unknown keys are errors, with a hint for camelCase", () => {
    fails(["--config", "/etc/wl.json"], /^\/etc\/wl\.json: unknown key "ipv4Prefix" \(did you mean "ipv4-prefix"\?\); known keys: socket, ipv4-prefix, /, {}, withFile('{"ipv4Prefix": "10.88.0.0/24"}'));
    fails(["--config", "/etc/wl.json"], /^\/etc\/wl\.json: unknown key "color"; known keys: /, {}, withFile('{"color": "blue"}'));
    fails(["--config", "/etc/wl.json"], /^\/etc\/wl\.json: unknown key "config"/, {}, withFile('{"config": "/etc/other.json"}'));
  });

  test("unreadable, non-JSON and non-object files", () => {
    fails(["--config", "/nonexistent.json"], /^invalid --config "\/nonexistent\.json": cannot read it \(ENOENT: /);
    fails(["--config", "/etc/wl.json"], /^invalid --config "\/etc\/wl\.json": not valid JSON \(/, {}, withFile("{mtu: 1400}"));
    fails(["--config", "/etc/wl.json"], 'invalid --config "/etc/wl.json": must contain a JSON object', {}, withFile("[1, 2]"));
    fails(["--config", ""], 'invalid --config "": must be a file name');
    fails([], /^invalid WORKLOADNETD_CONFIG "\/nope\.json": cannot read it/, { WORKLOADNETD_CONFIG: "/nope.json" });
  });
});

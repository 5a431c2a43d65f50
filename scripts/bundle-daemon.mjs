// Bundles the daemon (dist/src/cli/workloadnetd-main.js, as tsc left it, and
// its dependencies) into one CommonJS file beside it,
// dist/src/cli/workloadnetd-bundle.cjs, which the bin (workloadnetd.cjs)
// loads when it is there. One file instead of ~150 modules: Node resolves,
// reads and compiles one script, and what the daemon never calls from the
// libraries is left out (tree shaking). CommonJS rather than an ES module:
// importing one of Node's own modules from an ES module reads every export
// of it, and node:http's include getters that load Node's whole fetch
// implementation (undici, ~60 ms of CPU at start). The file sits at the same
// depth under dist/ as the modules, so paths derived from import.meta.url
// (the native addon's) stay right. See docs/performance-cold.md.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../dist/src/cli/", import.meta.url));
await build({
  entryPoints: [`${cli}workloadnetd-main.js`],
  outfile: `${cli}workloadnetd-bundle.cjs`,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node24",
  // Our modules are ES modules that find files from import.meta.url.
  define: { "import.meta.url": "__workloadnetModuleUrl" },
  banner: { js: 'const __workloadnetModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  // The Kubernetes client (~17 MB) is imported only with --kubernetes (the
  // daemon imports it lazily): left out, as a package the bundle imports at
  // run time, rather than a file V8 scans at every start.
  external: ["@kubernetes/client-node"],
  // node:assert as the libraries use it, without its ~10 ms of loading
  // (scripts/bundle-shims/assert.cjs). An alias is resolved from the
  // working directory, hence the absolute path.
  alias: { assert: fileURLToPath(new URL("./bundle-shims/assert.cjs", import.meta.url)) },
  legalComments: "none",
  logLevel: "warning",
});

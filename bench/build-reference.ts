// Builds the reference's Go daemon and client before `npm run bench` enters
// its sandbox: the build installs Debian's Go with apt when it is missing,
// and the sandbox's private network namespace has no way out. Does nothing
// unless WORKLOADNET_REFERENCE_BUILD is set, or when a build is there already
// (see cold-start.ts).
import { findReference } from "./cold-start.js";

const ref = await findReference();
if ("skipped" in ref && process.env.WORKLOADNET_REFERENCE_BUILD) console.error(`[bench] ${ref.skipped}`);

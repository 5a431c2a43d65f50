// What the daemon's bundle gets for `require("assert")` (see
// scripts/bundle-daemon.mjs). Its libraries (sonic-boom, under pino) load
// node:assert at start only to call `assert(condition, message)`; loading it
// costs ~10 ms of CPU at every start (it sets up colours for stderr, which
// loads node:stream and more). This is that call; Node's module is loaded
// only when an assertion fails, to throw its AssertionError, or when
// anything else of it is used.
"use strict";

function ok(value, message) {
  if (value) return;
  if (message instanceof Error) throw message;
  const { AssertionError } = require("node:assert");
  throw new AssertionError({ message: message ?? "The expression evaluated to a falsy value", actual: value, expected: true, operator: "==" });
}
ok.ok = ok;

module.exports = new Proxy(ok, {
  get(target, key) {
    return Object.hasOwn(target, key) ? target[key] : require("node:assert")[key];
  },
});

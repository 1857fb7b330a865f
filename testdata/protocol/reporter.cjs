// frutos: mocha's spec output on stdout, plus one JSON file with the
// outcome of every test, for the Go test to compare with its list of known
// failures (internal/protocoltest). Not part of the upstream suites.
//
//   mocha --reporter ./reporter.cjs --reporter-option output=results.json
//
// The file is an array of {"title", "state", "error"?, "duration"?}, one per
// test event: a test that fails after it passed (an assertion in a late
// callback) appears twice; so does a failing hook, titled after the hook.
"use strict";

const fs = require("fs");
const Mocha = require("mocha");
const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } =
  Mocha.Runner.constants;

const EXIT_GRACE_MS = 5000;
const STILL_OPEN = "(after the run) connections left open";

// openHandles describes what keeps the process alive: sockets with their
// addresses, other handles by type.
function openHandles() {
  const stdio = [process.stdin, process.stdout, process.stderr];
  const handles = process
    ._getActiveHandles()
    .filter((h) => !stdio.includes(h) && (!h.hasRef || h.hasRef()));
  const desc = handles.map((h) => {
    const name = (h.constructor && h.constructor.name) || typeof h;
    if (h.remotePort) {
      return `${name} ${h.localAddress}:${h.localPort} -> ${h.remoteAddress}:${h.remotePort}`;
    }
    return name;
  });
  return desc.length ? desc.join(", ") : "no handle (pending requests?)";
}

class FrutosReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const output = options.reporterOption && options.reporterOption.output;
    if (!output) {
      throw new Error("reporter.cjs: --reporter-option output=<file> is required");
    }
    const results = [];
    runner.on(EVENT_TEST_PASS, (test) => {
      results.push({ title: test.fullTitle(), state: "passed", duration: test.duration });
    });
    runner.on(EVENT_TEST_FAIL, (test, err) => {
      results.push({
        title: test.fullTitle(),
        state: "failed",
        error: String((err && (err.message || err)) || "unknown error"),
      });
    });
    runner.on(EVENT_TEST_PENDING, (test) => {
      results.push({ title: test.fullTitle(), state: "pending" });
    });
    const write = () => fs.writeFileSync(output, JSON.stringify(results, null, 1) + "\n");
    runner.once(EVENT_RUN_END, () => {
      write();
      // Mocha exits when nothing is left open. The server closes whatever
      // the tests left open within pingInterval + pingTimeout (0.5 s), so
      // a process still alive after EXIT_GRACE_MS holds a connection the
      // server never closed: record it as a failure, say what it is, exit.
      setTimeout(() => {
        const open = openHandles();
        results.push({ title: STILL_OPEN, state: "failed", error: `${EXIT_GRACE_MS} ms after the last test: ${open}` });
        write();
        process.stderr.write(`reporter.cjs: ${STILL_OPEN}: ${open}\n`);
        process.exit(3);
      }, EXIT_GRACE_MS).unref();
    });
  }
}

module.exports = FrutosReporter;

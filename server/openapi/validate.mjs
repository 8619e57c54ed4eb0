// Validates the server's OpenAPI document with two independent OpenAPI 3.1 validators, so that
// a document our own tests accept is also one the ecosystem accepts:
//
// - @seriousme/openapi-schema-validator checks it against the official OpenAPI 3.1 JSON Schema
//   (schema objects included, against the JSON Schema 2020-12 dialect) and resolves every $ref;
// - @redocly/openapi-core lints it with Redocly's `spec` ruleset (structure, unresolved refs,
//   unique operation ids, declared path parameters, ...) plus the rules that catch a document
//   contradicting itself (examples that fail their schema, undefined security schemes, unused
//   components). Style-only rules stay off.
//
// Usage: node validate.mjs <openapi.json>. Exits non-zero, printing every problem, if either
// validator finds one.

import { readFile } from "node:fs/promises";
import { resolve } from "node:path";

import { Validator } from "@seriousme/openapi-schema-validator";
import { createConfig, formatProblems, lintFromString } from "@redocly/openapi-core";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <openapi.json>");
  process.exit(2);
}
const source = await readFile(path, "utf8");
const document = JSON.parse(source);
let failed = false;

if (!String(document.openapi).startsWith("3.1")) {
  console.error(`expected an OpenAPI 3.1 document, got openapi: ${document.openapi}`);
  failed = true;
}

const schemaCheck = await new Validator().validate(document);
if (schemaCheck.valid) {
  console.log("openapi-schema-validator: valid OpenAPI 3.1");
} else {
  console.error("openapi-schema-validator: invalid");
  console.error(JSON.stringify(schemaCheck.errors, null, 2));
  failed = true;
}

const config = await createConfig({
  extends: ["spec"],
  rules: {
    "no-invalid-media-type-examples": "error",
    "no-invalid-parameter-examples": "error",
    "no-invalid-schema-examples": "error",
    "no-enum-type-mismatch": "error",
    "no-required-schema-properties-undefined": "error",
    "no-unused-components": "error",
    // Not `operation-2xx-response`: the WebSocket's success is its 101 upgrade. The server's
    // own unit tests require a success (2xx, or 101 for the upgrade) of every operation.
    "security-defined": "error",
  },
});
const problems = await lintFromString({ source, absoluteRef: resolve(path), config });
const errors = problems.filter((problem) => problem.severity === "error");
if (problems.length > 0) {
  formatProblems(problems, { format: "stylish", totals: { errors: errors.length, warnings: 0, ignored: 0 } });
}
if (errors.length === 0) {
  console.log(`redocly (spec ruleset): no errors in ${Object.keys(document.paths).length} paths`);
} else {
  failed = true;
}

process.exit(failed ? 1 : 0);

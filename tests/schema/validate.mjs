// Validates rendered PowerSync Service configs against the official JSON schema (@powersync/service-schema,
// pinned in package.json). The YAML is parsed as the service parses it, with the `!env` tag; each reference
// becomes a typed placeholder (string, or a number/boolean for `::number`/`::boolean`), since the values
// themselves are secrets that only exist on the host.
//
//   node tests/schema/validate.mjs FILE...     exit 0 when every file is valid, 1 otherwise
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv from "ajv";
import { parseDocument } from "yaml";

const require = createRequire(import.meta.url);
const schema = require("@powersync/service-schema/schema.json");
// The package exports no package.json, so read the installed one by path: the version is what was validated.
const schemaVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@powersync/service-schema/package.json", import.meta.url), "utf8"),
).version;

const envTag = {
  tag: "!env",
  resolve(text, onError) {
    const [name, conversion] = text.split("::");
    if (!/^PS_[A-Za-z0-9_]*$/.test(name)) onError(`!env ${text}: the service only substitutes PS_* variables`);
    if (conversion === "number") return 1024;
    if (conversion === "boolean") return true;
    if (conversion !== undefined) onError(`!env ${text}: unknown conversion ::${conversion}`);
    return `<${name}>`;
  },
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tests/schema/validate.mjs FILE...");
  process.exit(2);
}

let failed = 0;
for (const file of files) {
  const doc = parseDocument(readFileSync(file, "utf8"), { customTags: [envTag], prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
  if (problems.length === 0 && !validate(doc.toJS())) {
    problems.push(...validate.errors.map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`));
  }
  if (problems.length === 0) {
    console.log(`valid against @powersync/service-schema ${schemaVersion}: ${file}`);
  } else {
    failed += 1;
    console.log(`INVALID against @powersync/service-schema ${schemaVersion}: ${file}`);
    for (const problem of problems) console.log(`  ${problem}`);
  }
}
process.exit(failed === 0 ? 0 : 1);

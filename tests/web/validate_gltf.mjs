// Validate a glTF/GLB file with the Khronos validator; prints its report as JSON.
// Usage: node validate_gltf.mjs FILE   (resolved from viewer/web/node_modules)
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'viewer', 'web', 'package.json'));
const validator = require('gltf-validator');

const file = process.argv[2];
const data = new Uint8Array(await readFile(file));
const report = await validator.validateBytes(data, {
  uri: path.basename(file),
  maxIssues: 100,
  externalResourceFunction: () => Promise.reject(new Error('external resources are not allowed')),
});
console.log(JSON.stringify(report));

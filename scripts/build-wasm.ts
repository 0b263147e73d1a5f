// Builds the WebAssembly of the project from its text format (npm run build, after tsc compiled this file):
// dlp/tokens.wat and gateway/line-ends.wat into dist/ (tokens.wasm, line-ends.wasm). wabt (a devDependency) is
// WebAssembly's own reference toolkit, compiled to JavaScript; the running gateway needs only the .wasm files.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

// Run as dist/scripts/build-wasm.js: the project is two levels up.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const wabt = await wabtInit();
for (const source of ['dlp/tokens.wat', 'gateway/line-ends.wat']) {
  const module = wabt.parseWat(source, readFileSync(path.join(root, source), 'utf8'), { simd: true });
  module.resolveNames();
  module.validate();
  const { buffer } = module.toBinary({});
  const target = path.join(root, 'dist', source.replace(/\.wat$/, '.wasm'));
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, buffer);
  module.destroy();
}

#!/usr/bin/env node
// The phi-gateway command: runs the compiled CLI (npm run build makes dist/).
// Every accepted message costs file and directory fsyncs, which run on libuv's thread pool; its default
// of 4 threads queues them behind each other. Set before any asynchronous file operation starts.
process.env.UV_THREADPOOL_SIZE ??= '16';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/bin/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write(
    'phi-gateway: not built yet; run "npm run build" (npm start and npm test build first)\n',
  );
  process.exit(2);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));

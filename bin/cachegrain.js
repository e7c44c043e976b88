#!/usr/bin/env node
// The `cachegrain` command. In a source checkout it runs src/cli/main.ts through tsx; installed, the built dist/src/cli/main.js.
import { existsSync } from 'node:fs';

// A reader that stops early (`cachegrain digests | head -1`) closes the pipe: what it asked for has
// been written, and the rest has no one to go to.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

const source = new URL('../src/cli/main.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
}
const code = await cli.main(process.argv.slice(2));
process.exitCode = code;
// Every cache was closed; a connection the configuration module opened itself must not keep the command alive.
setTimeout(() => process.exit(code), 1000).unref();

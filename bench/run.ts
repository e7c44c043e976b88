/**
 * `npm run bench`: runs every benchmark once, prints each figure as a ratio against its anchor
 * from the same run, and writes them all to bench/RESULTS.md. `npm run bench -- redis http`
 * runs only the named sections (and leaves RESULTS.md alone).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Comparison, formatted, machineSummary, ratioText } from './harness.js';

const SECTIONS: Record<string, () => Promise<{ run(): Promise<Comparison[]> }>> = {
  locmem: () => import('./locmem.js'),
  http: () => import('./http.js'),
  database: () => import('./database.js'),
  memcached: () => import('./memcached.js'),
  redis: () => import('./redis.js'),
  fragments: () => import('./fragments.js'),
  outage: () => import('./outage.js'),
};

const only = process.argv.slice(2);
const results: Comparison[] = [];
console.log(machineSummary());
for (const [name, load] of Object.entries(SECTIONS)) {
  if (only.length > 0 && !only.includes(name)) continue;
  results.push(...(await (await load()).run()));
}

const rows = results.map(
  (r) =>
    `| ${r.section} | ${r.name} | ${formatted(r.ours, r.unit)} | ${r.anchorName} | ${formatted(r.anchor, r.unit)} | ${ratioText(r.ratio)}× | ${r.target ?? ''}${r.met === undefined ? '' : r.met ? ' ✓' : ' ✗'} |`,
);
const markdown = [
  '# Benchmark results',
  '',
  `Machine: ${machineSummary()}`,
  '',
  `Versions: ${versions()}`,
  '',
  `Written by \`npm run bench\` on ${new Date().toISOString()}. Ratios are ours ÷ anchor throughput from the same run, or anchor ÷ ours latency (higher is better either way).`,
  '',
  '| section | benchmark | ours (ops/s or ms) | anchor | anchor (ops/s or ms) | ratio | target |',
  '|---|---|---:|---|---:|---:|---|',
  ...rows,
  '',
].join('\n');
if (only.length === 0) {
  writeFileSync(join(projectRoot(), 'bench', 'RESULTS.md'), markdown);
  console.log(`\nWrote bench/RESULTS.md (${results.length} figures).`);
} else {
  console.log('\nbench/RESULTS.md is left as it was: only a run of every section writes it.');
}
process.exit(0);

/** The folder holding package.json above this file, whether it runs from bench/ or dist/bench/. */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** The versions behind the figures: the libraries measured against and the servers talked to. */
function versions(): string {
  const root = projectRoot();
  const packages = [
    'cachegrain',
    'lru-cache',
    'ioredis',
    'pg',
    'better-sqlite3',
    'memjs',
    'memcached',
    'express',
    'apicache',
    'route-cache',
    'nunjucks',
    'handlebars',
    'eta',
    'autocannon',
  ];
  const found = packages.map((name) => {
    const file = name === 'cachegrain' ? join(root, 'package.json') : join(root, 'node_modules', name, 'package.json');
    return existsSync(file) ? `${name} ${(JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version}` : `${name} (absent)`;
  });
  const servers = [
    ['redis-server', ['--version'], /v=(\S+)/],
    ['memcached', ['-V'], /memcached (\S+)/],
    ['psql', ['--version'], /(\d+\.\d+)/],
  ] as const;
  for (const [command, args, pattern] of servers) {
    const text = spawnSync(command, args, { encoding: 'utf8' }).stdout ?? '';
    found.push(`${command === 'psql' ? 'postgresql' : command} ${pattern.exec(text)?.[1] ?? '(absent)'}`);
  }
  return found.join(', ');
}

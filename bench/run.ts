/**
 * `npm run bench`: runs every benchmark, prints each figure as a ratio against its anchor from the
 * same run, and writes them all to bench/RESULTS.md.
 *
 *   npm run bench -- redis fragments:eta     only these sections, or units of one (RESULTS.md is left alone)
 *   npm run bench -- --processes 5           each unit in 5 fresh processes (3 by default; a section with servers of its own sets its count)
 *   npm run bench -- --against ../other      the same units of another checkout (built), side by side
 *
 * Every unit of a section runs in a process of its own, started afresh, several times: a process
 * has an offset of its own that holds for all its rounds (where the JIT inlined, where the allocator
 * put things), and on a shared machine it moves a row by more than a change worth finding. A row's
 * ratio is the median of its processes' ratios, and the table shows their spread. With `--against`,
 * a section that loads the other checkout's build measures it in the same rounds as ours and a
 * second copy of ours, in its own processes, so that its ratio against that build is read as its
 * same-build ratio is; for the other sections the processes of the two checkouts alternate, unit by
 * unit, so both see the same machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Comparison, cpuText, formatted, machineSummary, median, OTHER_CHECKOUT, ratioText } from './harness.js';

/** A section of the benchmark: its units (each run in a fresh process), and how many processes a unit takes. */
interface Section {
  /** Units run one at a time by `run(unit)`; a section without them is one unit. */
  units?: readonly string[];
  /** Processes a unit runs in when the section starts fresh ones of its own (servers) and needs no more, for all its units or by unit. */
  processes?: number | ((unit: string) => number | undefined);
  /** Whether its units load the other checkout's build (`--against`) and measure it beside ours, in the same rounds. */
  loadsOtherBuild?: boolean;
  run(unit?: string): Promise<Comparison[]>;
}

const SECTIONS: Record<string, () => Promise<Section>> = {
  locmem: () => import('./locmem.js'),
  http: () => import('./http.js'),
  database: () => import('./database.js'),
  memcached: () => import('./memcached.js'),
  redis: () => import('./redis.js'),
  fragments: () => import('./fragments.js'),
  outage: () => import('./outage.js'),
  memory: () => import('./memory.js'),
  deployed: () => import('./deployed.js'),
};

/** What a unit's process prints last: its figures, as JSON, behind this. */
const RESULTS_LINE = 'bench results: ';
const HERE = fileURLToPath(import.meta.url);

if (process.argv.includes('--list-units')) {
  // What another checkout's runner asks, with `--against`, to know which units this one has.
  for (const [name, load] of Object.entries(SECTIONS))
    for (const unit of (await load()).units ?? [undefined]) console.log(unit === undefined ? name : `${name}:${unit}`);
  process.exit(0);
}

const unitAt = process.argv.indexOf('--unit');
if (unitAt >= 0) {
  // A unit's process: run it, print its figures as it goes, then all of them as JSON.
  const [section, unit] = process.argv[unitAt + 1]!.split(':') as [string, string | undefined];
  const results = await (await SECTIONS[section]!()).run(unit);
  console.log(RESULTS_LINE + JSON.stringify(results));
  process.exit(0);
}

const { only, processes, against } = parseArguments(process.argv.slice(2));
console.log(machineSummary());
const ours: Comparison[] = [];
const theirs: Comparison[] = [];
const theirUnits = against === undefined ? new Set<string>() : unitsOf(against);
for (const [section, unit, count, loadsOtherBuild] of await unitsToRun(only)) {
  const runs: { ours: Comparison[][]; theirs: Comparison[][] } = { ours: [], theirs: [] };
  const named = unit === undefined ? section : `${section}:${unit}`;
  const beside = against !== undefined && loadsOtherBuild;
  for (let i = 0; i < count; i++) {
    // The two checkouts alternate, the order flipping each time, so neither always runs first; a
    // unit the other checkout does not have, or one that measures it in its own rounds, runs on this side alone.
    const order = beside || !theirUnits.has(named) ? ['ours'] : i % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
    for (const side of order as Array<'ours' | 'theirs'>) {
      const script = side === 'ours' ? HERE : join(against!, 'dist', 'bench', 'run.js');
      const label = against === undefined ? '' : beside ? 'ours beside the other build, ' : `${side}, `;
      runs[side].push(await runUnit(script, named, label, beside ? against : undefined));
    }
  }
  ours.push(...merged(runs.ours));
  theirs.push(...merged(runs.theirs));
}

console.log('');
for (const row of ours)
  console.log(
    `${row.section.padEnd(12)} ${`${row.name} vs ${row.anchorName}`.padEnd(90)} ${ratioText(row.ratio)}×  (${rangeText(row.spread)})  same build ×2: ${sameBuildText(row) || '—'}`,
  );
if (against !== undefined) console.log(`\n${comparisonTable(theirs, ours, against)}`);
// This checkout's figures are as good beside another's: its processes alternate with the other's.
if (only.length === 0) {
  writeFileSync(join(projectRoot(), 'bench', 'RESULTS.md'), resultsMarkdown(ours));
  console.log(`\nWrote bench/RESULTS.md (${ours.length} figures).`);
} else {
  console.log('\nbench/RESULTS.md is left as it was: only a run of every section writes it.');
}
process.exit(0);

function parseArguments(args: string[]): { only: string[]; processes: number | undefined; against: string | undefined } {
  const only: string[] = [];
  let processes: number | undefined;
  let against: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--processes') {
      processes = Number(args[++i]);
      if (!Number.isInteger(processes) || processes < 1) throw new Error(`bench: --processes takes a whole number of 1 or more, not ${args[i]}`);
    } else if (arg === '--against') {
      against = resolve(args[++i] ?? '');
      if (!existsSync(join(against, 'dist', 'bench', 'run.js'))) {
        throw new Error(`bench: --against ${args[i]} names no built checkout (no dist/bench/run.js there: run npm run build in it)`);
      }
    } else if (arg.startsWith('--')) {
      throw new Error(`bench: unknown option ${arg} (--processes N, --against DIR)`);
    } else {
      const [section] = arg.split(':');
      if (!(section! in SECTIONS)) throw new Error(`bench: unknown section ${section} (one of ${Object.keys(SECTIONS).join(', ')})`);
      only.push(arg);
    }
  }
  return { only, processes, against };
}

/** Each unit to run, in order, with how many processes it runs in and whether it loads the other build. */
async function unitsToRun(only: readonly string[]): Promise<Array<[string, string | undefined, number, boolean]>> {
  const units: Array<[string, string | undefined, number, boolean]> = [];
  for (const [name, load] of Object.entries(SECTIONS)) {
    const asked = only.filter((arg) => arg.split(':')[0] === name);
    if (only.length > 0 && asked.length === 0) continue;
    const section = await load();
    // A section that spreads its rounds over processes of its own (servers) takes no more.
    const countOf = (unit: string | undefined) =>
      (typeof section.processes === 'function' ? section.processes(unit ?? '') : section.processes) ?? processes ?? 3;
    const wanted = asked.some((arg) => !arg.includes(':')) || asked.length === 0 ? undefined : asked.map((arg) => arg.split(':')[1]!);
    for (const unit of section.units ?? [undefined]) {
      if (wanted === undefined || (unit !== undefined && wanted.includes(unit))) units.push([name, unit, countOf(unit), section.loadsOtherBuild === true]);
    }
    if (wanted !== undefined) {
      const unknown = wanted.filter((unit) => !(section.units ?? []).includes(unit));
      if (unknown.length > 0)
        throw new Error(`bench: section ${name} has no unit ${unknown.join(', ')} (${(section.units ?? []).join(', ') || 'it has none'})`);
    }
  }
  return units;
}

/** The units another checkout's runner has, as `section:unit` (or the section alone). */
function unitsOf(checkout: string): Set<string> {
  const listed = spawnSync(process.execPath, [join(checkout, 'dist', 'bench', 'run.js'), '--list-units'], { cwd: checkout, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`bench: ${checkout} did not list its units: ${listed.stderr}`);
  return new Set(listed.stdout.split('\n').filter((line) => line !== ''));
}

/** Runs one unit in a fresh process of `script`, passing on what it prints; answers its figures. */
async function runUnit(script: string, unit: string, label: string, otherCheckout: string | undefined): Promise<Comparison[]> {
  console.log(`-- ${label}${unit}`);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, script, '--unit', unit], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: dirname(dirname(dirname(script))),
      env: otherCheckout === undefined ? process.env : { ...process.env, [OTHER_CHECKOUT]: otherCheckout },
    });
    let text = '';
    let line = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      text += chunk;
      line += chunk;
      const lines = line.split('\n');
      line = lines.pop()!;
      for (const done of lines) if (!done.startsWith(RESULTS_LINE)) console.log(done);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`bench: ${unit} (${script}) exited with ${code}`))));
  });
  const last = output.split('\n').find((line) => line.startsWith(RESULTS_LINE));
  if (last === undefined) throw new Error(`bench: ${unit} (${script}) printed no results`);
  return JSON.parse(last.slice(RESULTS_LINE.length)) as Comparison[];
}

/**
 * The rows of several processes of one unit as one: each figure the median of the processes', with
 * the spread of their ratios and of their same-build ratios. A unit run once keeps the spreads it
 * found itself (over fresh servers of its own), or its one ratio as both ends.
 */
function merged(runs: readonly Comparison[][]): Comparison[] {
  if (runs.length === 0) return [];
  return runs[0]!.map((first, row) => {
    const same = runs.map((run) => run[row]).filter((r): r is Comparison => r !== undefined && r.name === first.name && r.anchorName === first.anchorName);
    // A unit run once keeps the spread it found over fresh servers of its own, where it found one.
    const spreadOf = (values: number[], own: [number, number] | undefined): [number, number] =>
      same.length === 1 && own !== undefined ? own : [Math.min(...values), Math.max(...values)];
    const ratios = same.map((r) => r.ratio);
    const result: Comparison = {
      ...first,
      ours: medianMeasurement(same.map((r) => r.ours)),
      anchor: medianMeasurement(same.map((r) => r.anchor)),
      ratio: median(ratios),
      spread: spreadOf(ratios, first.spread),
    };
    const controls = same.flatMap((r) => (r.sameBuild === undefined ? [] : [r.sameBuild]));
    if (controls.length === same.length) {
      result.sameBuild = median(controls);
      result.sameBuildSpread = spreadOf(controls, first.sameBuildSpread);
    }
    const againstOther = same.flatMap((r) => (r.otherBuild === undefined ? [] : [r.otherBuild]));
    if (againstOther.length === same.length) {
      result.otherBuild = median(againstOther);
      result.otherBuildSpread = spreadOf(againstOther, first.otherBuildSpread);
    }
    if (first.threshold !== undefined) result.met = metBy(result);
    return result;
  });
}

/** The median throughput of processes' figures, and their median CPU time per operation where they have one. */
function medianMeasurement(figures: readonly Comparison['ours'][]): Comparison['ours'] {
  const opsPerSec = median(figures.map((figure) => figure.opsPerSec));
  const cpu = figures.flatMap((figure) => (figure.cpuMicros === undefined ? [] : [figure.cpuMicros]));
  return { opsPerSec, meanMicros: 1e6 / opsPerSec, ...(cpu.length === figures.length && { cpuMicros: median(cpu) }) };
}

/** Whether a merged row meets its target: its ratio, for a latency bound its median latency, for a heap bound its MB over the anchor's. */
function metBy(row: Comparison): boolean {
  const { threshold } = row;
  if (threshold === undefined) return row.met ?? false;
  if (threshold.of === 'ratio') return row.ratio >= threshold.value;
  if (threshold.of === 'ms') return row.ours.meanMicros / 1000 < threshold.value;
  return (row.ours.meanMicros - row.anchor.meanMicros) / 1000 <= threshold.value;
}

/** A spread, lowest–highest. */
function rangeText(range: [number, number] | undefined): string {
  return range === undefined ? '' : `${ratioText(range[0])}–${ratioText(range[1])}`;
}

/** The same-build ratio and its spread: how far the row's ratio moves with nothing changed. */
function sameBuildText(row: Comparison): string {
  if (row.sameBuild === undefined) return '';
  const spread = row.sameBuildSpread === undefined ? '' : ` (${rangeText(row.sameBuildSpread)})`;
  return `${ratioText(row.sameBuild)}×${spread}`;
}

/** A side's figure as the results table shows it: its throughput, or latency or heap, and its CPU time per operation when the row is judged by it. */
function figureText(row: Comparison, side: 'ours' | 'anchor'): string {
  const figure = formatted(row[side], row.unit);
  return row.judgedBy === 'cpu' ? `${figure}, ${cpuText(row[side])}` : figure;
}

function resultsMarkdown(rows: readonly Comparison[]): string {
  const lines = rows.map(
    (r) =>
      `| ${r.section} | ${r.name} | ${figureText(r, 'ours')} | ${r.anchorName} | ${figureText(r, 'anchor')} | ${ratioText(r.ratio)}×${r.judgedBy === 'cpu' ? ' CPU' : ''} | ${rangeText(r.spread)} | ${sameBuildText(r)} | ${r.target ?? ''}${r.met === undefined ? '' : r.met ? ' ✓' : ' ✗'} |`,
  );
  return [
    '# Benchmark results',
    '',
    `Machine: ${machineSummary()}`,
    '',
    `Versions: ${versions()}`,
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString()}. Ratios are ours ÷ anchor throughput from the same run, or anchor ÷ ours latency or heap (higher is better either way): the median over fresh processes, whose spread (lowest–highest) is shown beside it. A ratio marked CPU is the anchor's CPU time per operation ÷ ours (over sockets, the server process's own, per request it served). "Same build ×2" is the same ratio of ours against ours measured again in the same rounds (over sockets, a second server process of ours), with its spread: a ratio that differs from another by less than it moves differs by noise.`,
    '',
    '| section | benchmark | ours (ops/s, ms or MB) | anchor | anchor (ops/s, ms or MB) | ratio | spread | same build ×2 | target |',
    '|---|---|---:|---|---:|---:|---:|---:|---|',
    ...lines,
    '',
  ].join('\n');
}

/**
 * Two checkouts' rows side by side: each one's ratio to its anchor, and ours ÷ theirs. A row measured
 * beside the other build in the same rounds has its ÷ from those rounds, with its spread over the
 * processes, and no ratio of the other build's to the anchor of its own.
 */
function comparisonTable(theirs: readonly Comparison[], ours: readonly Comparison[], other: string): string {
  const key = (row: Comparison) => `${row.section}\u0000${row.name}\u0000${row.anchorName}`;
  const theirsByKey = new Map(theirs.map((row) => [key(row), row]));
  const lines = ours.map((row) => {
    const them = theirsByKey.get(key(row));
    theirsByKey.delete(key(row));
    const ratio =
      row.otherBuild !== undefined
        ? `${row.otherBuild.toFixed(3)} (${rangeText(row.otherBuildSpread)})`
        : them === undefined
          ? '—'
          : (row.ratio / them.ratio).toFixed(3);
    const before = them === undefined ? '—' : `${ratioText(them.ratio)} (${rangeText(them.spread)})`;
    return `| ${row.section} | ${row.name} | ${row.anchorName} | ${before} | ${ratioText(row.ratio)} (${rangeText(row.spread)}) | ${ratio} | ${sameBuildText(row)} |`;
  });
  for (const row of theirsByKey.values())
    lines.push(`| ${row.section} | ${row.name} | ${row.anchorName} | ${ratioText(row.ratio)} (${rangeText(row.spread)}) | — | — | |`);
  return [
    `Against ${other}: each side's ratio to its anchor (median over processes, spread beside it), this checkout's ÷ the other's, and this checkout's same-build ratio (how far a ratio moves with nothing changed). Where the other side reads "—" and ÷ has a spread, both builds ran in the same processes and ÷ is ours against theirs in the same rounds, as the same-build ratio is ours against ours.`,
    '',
    '| section | benchmark | anchor | other | this | ÷ | same build ×2 |',
    '|---|---|---|---:|---:|---:|---:|',
    ...lines,
  ].join('\n');
}

/** The folder holding package.json above this file, whether it runs from bench/ or dist/bench/. */
function projectRoot(): string {
  let dir = dirname(HERE);
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
    'fastify',
    'koa',
    'hono',
    'apicache',
    'route-cache',
    'nunjucks',
    'handlebars',
    'eta',
    'ejs',
    'pug',
    'liquidjs',
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

/**
 * The benchmark harness: times async operations (one at a time or many in flight), pairs each
 * figure with its anchor from the same run, and prints and records the ratios.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Measurement {
  /** Operations per second. */
  opsPerSec: number;
  /** Mean time of one operation, in microseconds (wall time / operations, so in-flight overlap counts). */
  meanMicros: number;
  /** CPU time (user and system) the measuring process spent per operation, in microseconds. */
  cpuMicros?: number;
}

export interface Comparison {
  section: string;
  name: string;
  ours: Measurement;
  anchorName: string;
  anchor: Measurement;
  /**
   * What the measurements are: throughput (the default), a latency in ms, a heap in MB or bytes on
   * the wire in KB (`meanMicros` / 1000, see `lowerIsBetter`), whose ratio is the anchor's over ours.
   */
  unit?: 'ms' | 'MB' | 'KB';
  /** ours / anchor throughput: 1 is as fast as the anchor, higher is faster. */
  ratio: number;
  /** The target, as text (e.g. '≥ 0.5×'). */
  target?: string;
  /** Whether the target is met, when there is one. */
  met?: boolean;
  /** The target as a bound: on the ratio (at least), on our latency in ms (below), or on our MB over the anchor's (at most). */
  threshold?: { of: 'ratio' | 'ms' | 'MB over anchor'; value: number };
  /** The lowest and highest ratio of the processes the row was measured in, when there were several. */
  spread?: [number, number];
  /** What the ratio compares: throughput (the default), or CPU time per operation (the anchor's ÷ ours). */
  judgedBy?: 'cpu';
  /**
   * The same ratio of ours against ours again, measured in the same rounds as a side of its own: how
   * far from 1 the row's ratio moves with no change at all. A row whose ratio differs from another's
   * by less than this differs from it by noise.
   */
  sameBuild?: number;
  /** The lowest and highest same-build ratio of the processes (or fresh servers) the row was measured in. */
  sameBuildSpread?: [number, number];
  /**
   * With `--against`, where the section loads the other checkout's build beside ours: the same ratio
   * of ours against that build doing the same work, measured in the same rounds as the same-build
   * ratio, so that the two are read alike.
   */
  otherBuild?: number;
  /** The lowest and highest ratio against the other build of the processes the row was measured in. */
  otherBuildSpread?: [number, number];
}

/** What the package exports, as a section uses it: ours, or the other checkout's build. */
export type Library = typeof import('../src/index.js');

/** What a comparison times: one operation, given its index. */
export type Operation = (i: number) => Promise<unknown> | unknown;

/**
 * Ours and, with `--against`, the other build's cache of the same kind and a second copy of ours (see
 * `thisBuildAgain`): `each` to set them all up alike, `beside(work)` for `compare`'s `theirs` and
 * `again` (nothing where there is no other build).
 */
export interface Builds<C> {
  readonly each: readonly C[];
  beside(work: (cache: C) => Operation): { theirs?: Operation; again?: Operation };
}

export function builds<C>(ours: C, beside?: { theirs: C; again: C }): Builds<C> {
  return {
    each: beside === undefined ? [ours] : [ours, beside.theirs, beside.again],
    beside: (work) => (beside === undefined ? {} : { theirs: work(beside.theirs), again: work(beside.again) }),
  };
}

/** The variable through which the runner tells a unit's process where the other checkout is (`--against`). */
export const OTHER_CHECKOUT = 'CACHEGRAIN_BENCH_AGAINST';

/**
 * The other checkout's build, when the runner was given one, loaded into this process beside ours so
 * that a section can measure its cache in the same rounds as ours. It is typed as ours: a section
 * uses only what both builds have.
 */
export async function otherBuild(): Promise<Library | undefined> {
  const checkout = process.env[OTHER_CHECKOUT];
  if (checkout === undefined) return undefined;
  return (await import(pathToFileURL(join(checkout, 'dist', 'src', 'index.js')).href)) as Library;
}

/**
 * This build loaded a second time, from a copy of its files: with `--against`, the same-build side of
 * a row whose other build is measured beside ours. Two builds in one process each have code of their
 * own, compiled and placed as it happens to be, which moves a row by more than ours measured twice
 * (the same functions, the same compiled code) can show; a copy of this build is as separate from
 * ours as the other build is, with nothing changed. The copy lies beside this build's files, so that
 * it finds the same packages, and is removed when the process ends.
 */
export async function thisBuildAgain(): Promise<Library> {
  const built = join(dirname(fileURLToPath(import.meta.url)), '..');
  const copy = mkdtempSync(join(built, 'copy-'));
  process.once('exit', () => rmSync(copy, { recursive: true, force: true }));
  cpSync(join(built, 'src'), join(copy, 'src'), { recursive: true });
  return (await import(pathToFileURL(join(copy, 'src', 'index.js')).href)) as Library;
}

/** How many times each comparison measures ours and its anchor, alternately. */
export const ROUNDS = 5;

export interface MeasureOptions {
  /** How long to measure after warming up. @default 400 */
  durationMs?: number;
  /** How many operations run concurrently. @default 1 */
  inFlight?: number;
  /** Warm-up time. @default 150 */
  warmupMs?: number;
}

/** Runs `operation` repeatedly for a while and reports its throughput. */
export async function measure(operation: Operation, options: MeasureOptions = {}): Promise<Measurement> {
  const { durationMs = 400, inFlight = 1, warmupMs = 150 } = options;
  // Collect before warming up, not between warm-up and measurement: optimized code holds the objects
  // it embeds weakly, and a full collection that frees them deoptimizes it, so the measurement would
  // time V8 optimizing the operation again, at whichever speed that lands on.
  globalThis.gc?.();
  await runFor(operation, warmupMs, inFlight);
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const count = await runFor(operation, durationMs, inFlight);
  const elapsedNs = Number(process.hrtime.bigint() - started);
  const spent = process.cpuUsage(cpu);
  return { opsPerSec: (count * 1e9) / elapsedNs, meanMicros: elapsedNs / 1000 / count, cpuMicros: (spent.user + spent.system) / count };
}

async function runFor(operation: Operation, durationMs: number, inFlight: number): Promise<number> {
  const deadline = performance.now() + durationMs;
  let count = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      // Check the clock once per 64 operations: reading it is not free next to a fast operation.
      for (let j = 0; j < 64; j++) await operation(count++);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return count;
}

/** What holds only while ours is measured (a subscriber listening, say), set up and taken down around each of its rounds. */
export interface Surroundings {
  enter(): void;
  leave(): void;
}

/**
 * Measures the anchor and ours in turn, ROUNDS times each, and answers the median of the rounds'
 * ratios. On a shared 2-core machine a single measurement swings by tens of percent, and the machine
 * changes from one second to the next: the two measurements of a round, taken back to back, see much
 * the same machine, and the median drops the rounds it disturbed. Each round measures ours a second
 * time, for the same-build ratio beside the row's, and, given `theirs` (the same work done by the
 * other build), that build on the other side of ours, for the ratio against it; ours the second time
 * is then `again`, the same work done by a second copy of this build (see `thisBuildAgain`).
 */
export async function compare(
  section: string,
  name: string,
  ours: Operation,
  anchorName: string,
  anchor: Operation,
  options: MeasureOptions & { target?: number; whileOurs?: Surroundings; judgedBy?: 'cpu'; theirs?: Operation; again?: Operation } = {},
): Promise<Comparison> {
  const anchors: Measurement[] = [];
  const oursRuns: Measurement[] = [];
  const again: Measurement[] = [];
  const theirRuns: Measurement[] = [];
  const { theirs } = options;
  // Ours the second time: a second copy of this build where the other build is measured beside it.
  const oursAgain = options.again ?? ours;
  const measureOurs = async (runs: Measurement[], operation: Operation) => {
    options.whileOurs?.enter();
    try {
      runs.push(await measure(operation, options));
    } finally {
      options.whileOurs?.leave();
    }
  };
  // The order flips every round, so that no side always runs just after another. Ours stands between
  // its second measurement and whichever it is compared with beside it (the other build where there
  // is one, the anchor where not), so both are as far from it.
  for (let round = 0; round < ROUNDS; round++) {
    const first = round % 2 === 0;
    if (first) anchors.push(await measure(anchor, options));
    if (first && theirs !== undefined) theirRuns.push(await measure(theirs, options));
    if (!first) await measureOurs(again, oursAgain);
    await measureOurs(oursRuns, ours);
    if (first) await measureOurs(again, oursAgain);
    if (!first && theirs !== undefined) theirRuns.push(await measure(theirs, options));
    if (!first) anchors.push(await measure(anchor, options));
  }
  const result = compared(section, name, oursRuns, anchorName, anchors, options.target, again, options.judgedBy);
  if (theirs !== undefined) result.otherBuild = pairedRatio(oursRuns, theirRuns, options.judgedBy);
  print(result);
  return result;
}

/**
 * The comparison of rounds measured in pairs (`ours[i]` beside `anchors[i]`): each side's median
 * throughput, and the median of the rounds' ratios; with `again` (ours measured a second time in
 * each round), the same-build ratio too. Judged by CPU, a ratio is the anchor's CPU time per operation
 * ÷ ours: time spent waiting for a core shared with others moves it much less than the throughput.
 */
export function compared(
  section: string,
  name: string,
  ours: Measurement[],
  anchorName: string,
  anchors: Measurement[],
  target?: number,
  again?: Measurement[],
  judgedBy?: 'cpu',
): Comparison {
  const ratio = pairedRatio(ours, anchors, judgedBy);
  const result: Comparison = { section, name, ours: medianOf(ours), anchorName, anchor: medianOf(anchors), ratio };
  if (judgedBy !== undefined) result.judgedBy = judgedBy;
  if (again !== undefined) result.sameBuild = pairedRatio(ours, again, judgedBy);
  if (target !== undefined) {
    result.target = `≥ ${target}×`;
    result.threshold = { of: 'ratio', value: target };
    result.met = ratio >= target;
  }
  return result;
}

/** The median of the rounds' ratios of `ours` against `others`, measured in pairs (`ours[i]` beside `others[i]`). */
function pairedRatio(ours: readonly Measurement[], others: readonly Measurement[], judgedBy?: 'cpu'): number {
  return median(ours.map((run, i) => roundRatio(run, others[i]!, judgedBy)));
}

/** One round's ratio, higher is better: ours ÷ the anchor's throughput, or the anchor's ÷ our CPU time per operation. */
export function roundRatio(ours: Measurement, anchor: Measurement, judgedBy?: 'cpu'): number {
  return judgedBy === 'cpu' ? anchor.cpuMicros! / ours.cpuMicros! : ours.opsPerSec / anchor.opsPerSec;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The measurement of median throughput, and of median CPU time per operation. */
export function medianOf(runs: readonly Measurement[]): Measurement {
  const opsPerSec = median(runs.map((run) => run.opsPerSec));
  const cpu = runs.flatMap((run) => (run.cpuMicros === undefined ? [] : [run.cpuMicros]));
  return { opsPerSec, meanMicros: 1e6 / opsPerSec, ...(cpu.length === runs.length && { cpuMicros: median(cpu) }) };
}

/**
 * A figure where less is better (a latency in ms, a heap in MB) as a measurement: the figure where a
 * latency's mean goes (× 1000), its inverse where a throughput goes, so that its median and its
 * ratio to an anchor read as a throughput's do.
 */
export function lowerIsBetter(figure: number): Measurement {
  return { opsPerSec: 1000 / figure, meanMicros: figure * 1000 };
}

/** A measurement as the table shows it: ops/s, or ms for a latency, MB for a heap, KB for bytes. */
export function formatted(measurement: Measurement, unit: Comparison['unit']): string {
  if (unit !== undefined) return `${(measurement.meanMicros / 1000).toFixed(1)} ${unit}`;
  return `${Math.round(measurement.opsPerSec).toLocaleString('en-US')} ops/s`;
}

export function print(result: Comparison): void {
  const fmt = (m: Measurement) => formatted(m, result.unit) + (result.judgedBy === 'cpu' ? `, ${cpuText(m)}` : '');
  const verdict = result.met === undefined ? '' : result.met ? `  target ${result.target} met` : `  target ${result.target} MISSED`;
  const control =
    (result.sameBuild === undefined ? '' : `  (same build ×2: ${ratioText(result.sameBuild)}×)`) +
    (result.otherBuild === undefined ? '' : `  (÷ other build: ${result.otherBuild.toFixed(3)})`);
  console.log(
    `${result.section.padEnd(12)} ${result.name.padEnd(44)} ${fmt(result.ours).padStart(16)} vs ${result.anchorName} ${fmt(result.anchor)}  = ${ratioText(result.ratio)}×${result.judgedBy === 'cpu' ? ' in CPU' : ''}${verdict}${control}`,
  );
}

/** CPU time per operation, as the table shows it. */
export function cpuText(measurement: Measurement): string {
  return measurement.cpuMicros === undefined ? '' : `${measurement.cpuMicros.toFixed(measurement.cpuMicros < 10 ? 2 : 1)} µs CPU`;
}

/** A ratio with two significant digits at least: 0.021, not 0.02 (which would hide a 50% change). */
export function ratioText(ratio: number): string {
  return ratio >= 0.1 ? ratio.toFixed(2) : ratio.toPrecision(2);
}

/** The machine and versions, for the top of the results. */
export function machineSummary(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform} ${process.arch}`;
}

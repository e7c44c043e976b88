/**
 * The manual as the tests read it: README.md, its front page, and the guides under docs/. Its fenced
 * blocks, its prose outside them, its headings with the anchors GitHub gives them, its relative
 * links, and a section found by its heading in whichever file holds it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** The manual's files, by their paths from the project root: README.md, then each guide of docs/. */
export function manualFiles(): string[] {
  const guides = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')) : [];
  return ['README.md', ...guides.sort().map((name) => `docs/${name}`)];
}

export function manualText(file: string): string {
  return readFileSync(join(root, file), 'utf8');
}

/** Lines as `wc -l` counts them: a last line without its newline counts too. */
export function lineCount(text: string): number {
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** A fenced block: the indent of its fence (a block inside a list item is indented), and the indexes of its two fence lines. */
export interface FencedBlock {
  indent: string;
  open: number;
  close: number;
}

/** Every fenced block of a file's lines, in order. */
export function fencedBlocks(lines: readonly string[]): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^( *)```[\w-]*\s*$/.exec(lines[i]!);
    if (fence === null) continue;
    const indent = fence[1]!;
    let close = i + 1;
    while (close < lines.length && lines[close] !== `${indent}\`\`\``) close++;
    blocks.push({ indent, open: i, close });
    i = close;
  }
  return blocks;
}

/** A file's lines with every fenced block's lines left empty, so that each line keeps its number. */
export function unfencedLines(text: string): string[] {
  const lines = text.split('\n');
  for (const block of fencedBlocks(lines)) lines.fill('', block.open, block.close + 1);
  return lines;
}

/** A file's prose: its unfenced lines with every code span blanked too, so that what is written as code is never read as a link. */
export function proseLines(text: string): string[] {
  // A code span may run over a line's end; its newlines are kept.
  return unfencedLines(text)
    .join('\n')
    .replace(/(`+)(?!`)[\s\S]*?[^`]\1(?!`)/g, (span) => span.replace(/[^\n]/g, ' '))
    .split('\n');
}

/** The anchor GitHub gives a heading: lower case, each space a '-', punctuation other than '-' and '_' dropped. */
export function headingAnchor(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

/** A file's headings in order, each with its anchor (the second of one name gets '-1', as GitHub numbers them). */
export function headings(text: string): Array<{ level: number; title: string; anchor: string; line: number }> {
  const seen = new Map<string, number>();
  return unfencedLines(text).flatMap((line, index) => {
    const heading = /^(#{1,6}) +(.+?) *#* *$/.exec(line);
    if (heading === null) return [];
    const base = headingAnchor(heading[2]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return [{ level: heading[1]!.length, title: heading[2]!, anchor: count === 0 ? base : `${base}-${count}`, line: index + 1 }];
  });
}

/** Every link target of a file's prose, with its line; what a link's text says is not needed. */
export function links(text: string): Array<{ target: string; line: number }> {
  return proseLines(text).flatMap((line, index) => [...line.matchAll(/\]\(([^)\s]+)\)/g)].map((link) => ({ target: link[1]!, line: index + 1 })));
}

/**
 * The section a heading opens (`## How it is built`, `### Custom backends`), up to the next heading
 * of its level or above, from whichever file of the manual holds it; answered with that file.
 */
export function manualSection(heading: string): { file: string; text: string } {
  const level = /^#+/.exec(heading)![0].length;
  for (const file of manualFiles()) {
    const text = manualText(file);
    const unfenced = unfencedLines(text);
    const start = unfenced.indexOf(heading);
    if (start < 0) continue;
    let end = start + 1;
    while (end < unfenced.length && !(/^#+ /.test(unfenced[end]!) && /^#+/.exec(unfenced[end]!)![0].length <= level)) end++;
    const lines = text.split('\n');
    return { file, text: lines.slice(start, end).join('\n') };
  }
  throw new Error(`no file of the manual (${manualFiles().join(', ')}) has the heading "${heading}"`);
}

/**
 * The manual (README.md, its front page, and the guides of docs/) names only what the repository
 * holds: every path under src/, test/, bench/, edge/, examples/ or docs/ it names exists, and every
 * module "How it is built" names by its file name is one of src/. Every relative link lands on a file
 * that exists and, where it names one, on a heading of it; and the front page stays a front page.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headingAnchor, headings, lineCount, links, manualFiles, manualSection, manualText, root } from './setup/manual.js';

/** A path from the project root, not the tail of a longer one (`cachegrain/opentelemetry`, `./src`). */
const PROJECT_PATH = /(?<![\w./-])(?:src|test|bench|edge|examples|docs)\/[\w./-]*/g;
/** A module named by its file name alone; `<engine>` stands for any name. */
const MODULE_NAME = /(?<![\w./<>-])[\w<>-]+(?:\.[\w<>-]+)*\.ts\b/g;
/** The most lines README.md may have: what is past the quick start and the map of the guides goes in a guide. */
const FRONT_PAGE_LINES = 400;

const sourceFileNames = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).map((path) => path.split('/').at(-1)!);

function namesAModule(name: string): boolean {
  const pattern = new RegExp(`^${name.replace(/[.]/g, '\\.').replace(/<[\w-]+>/g, '[\\w-]+')}$`);
  return sourceFileNames.some((file) => pattern.test(file));
}

/** Every project path the manual names, each with where: `docs/pages.md:12: src/http/page-cache.ts`. */
function namedPaths(): Array<{ path: string; where: string }> {
  return manualFiles().flatMap((file) =>
    manualText(file)
      .split('\n')
      .flatMap((line, index) => (line.match(PROJECT_PATH) ?? []).map((path) => ({ path: path.replace(/[.]$/, ''), where: `${file}:${index + 1}` }))),
  );
}

/** Why a relative link of `file` does not land, or undefined when it does. */
function brokenLink(file: string, target: string): string | undefined {
  const [path, anchor] = target.split('#') as [string, string | undefined];
  const landing = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
  if (landing.startsWith('..') || !existsSync(join(root, landing))) return `no file ${landing}`;
  if (anchor === undefined) return undefined;
  if (!landing.endsWith('.md') || statSync(join(root, landing)).isDirectory()) return `an anchor into ${landing}, which has no headings`;
  const anchors = headings(manualText(landing)).map((heading) => heading.anchor);
  return anchors.includes(anchor) ? undefined : `${landing} has no heading whose anchor is #${anchor}`;
}

describe('the manual names what the repository holds', () => {
  it('is README.md and the guides of docs/', () => {
    expect(manualFiles()[0]).toBe('README.md');
    expect(manualFiles().length).toBeGreaterThan(5);
  });

  it('every src/, test/, bench/, edge/, examples/ and docs/ path it names exists', () => {
    const named = namedPaths();
    expect(new Set(named.map(({ path }) => path)).size).toBeGreaterThan(20);
    expect(named.filter(({ path }) => !existsSync(join(root, path))).map(({ path, where }) => `${where}: ${path}`)).toEqual([]);
  });

  it('every module "How it is built" names by its file name is a file of src/', () => {
    const { file, text } = manualSection('## How it is built');
    const named = [...new Set(text.replace(PROJECT_PATH, '').match(MODULE_NAME) ?? [])];
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((name) => !namesAModule(name)).map((name) => `${file}: ${name}`)).toEqual([]);
  });
});

describe("the manual's links", () => {
  it('land, each relative one, on a file that exists and on a heading of it', () => {
    const relative = manualFiles().flatMap((file) =>
      links(manualText(file))
        .filter(({ target }) => !/^[a-z][\w+.-]*:/i.test(target))
        .map((link) => ({ ...link, file })),
    );
    expect(relative.length).toBeGreaterThan(50);
    const broken = relative.flatMap(({ file, target, line }) => {
      const why = brokenLink(file, target);
      return why === undefined ? [] : [`${file}:${line}: (${target}): ${why}`];
    });
    expect(broken).toEqual([]);
  });

  it('lead from the README to every guide, each of which leads back', () => {
    const fromReadme = new Set(links(manualText('README.md')).map(({ target }) => target.split('#')[0]));
    const guides = manualFiles().slice(1);
    expect(guides.filter((guide) => !fromReadme.has(guide))).toEqual([]);
    expect(guides.filter((guide) => !links(manualText(guide)).some(({ target }) => target.split('#')[0] === '../README.md'))).toEqual([]);
  });

  it('are read with the anchors GitHub gives headings', () => {
    expect(headingAnchor('Server failures: `timeoutMs` and `failOpen`')).toBe('server-failures-timeoutms-and-failopen');
    expect(headingAnchor("Deploys renew the edge's pages from the templates they change")).toBe('deploys-renew-the-edges-pages-from-the-templates-they-change');
    expect(headingAnchor('An in-process tier in front of a server: `options.l1`')).toBe('an-in-process-tier-in-front-of-a-server-optionsl1');
    expect(headingAnchor('snake_case and  two spaces')).toBe('snake_case-and--two-spaces');
    expect(headings('# Title\n```sh\n# a comment, not a heading\n```\n## Title\n').map((heading) => heading.anchor)).toEqual(['title', 'title-1']);
    expect(links('see [this](#here) and `[code](#not-a-link)`\n```\n[in a block](#nor-this)\n```').map(({ target }) => target)).toEqual(['#here']);
  });
});

describe('the front page', () => {
  it(`is at most ${FRONT_PAGE_LINES} lines: the rest lives in the guides`, () => {
    expect(lineCount(manualText('README.md'))).toBeLessThanOrEqual(FRONT_PAGE_LINES);
  });
});

/**
 * Where a misused or failing cache tag or hole is reported: for every engine, every way
 * it renders a template file and every error the tag can raise, the message names the template file
 * and the line of the tag at fault. The templates are real files; the tag stands on line 4 of each.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caches, configureCaches } from '../../src/index.js';
import { defineHole, forgetHole } from '../../src/http/index.js';
import { ENGINES, type FragmentEngine, type TagKeywordArgs } from './engines.js';

const TAG_LINE = 4;

interface ErrorKind {
  kind: string;
  /** The tag, with its body on lines of its own. */
  tag(engine: FragmentEngine): string;
  context?: Record<string, unknown>;
  /** What the message says besides the site. */
  says: string | RegExp;
}

const body = (engine: FragmentEngine) => `\n<b>${engine.out('name')}</b>\n`;

const KINDS: ErrorKind[] = [
  {
    kind: 'timeout-not-a-number',
    tag: (e) => e.cache('$ttl', 'side', [], body(e)),
    context: { ttl: 'soon' },
    says: `"cache" tag got a non-integer timeout value: 'soon'`,
  },
  { kind: 'missing-fragment-name', tag: (e) => e.bareCache('60', body(e)), says: "'cache' tag requires at least 2 arguments." },
  { kind: 'unknown-alias', tag: (e) => e.cache('60', 'side', [], body(e), 'nope'), says: "Invalid cache name specified for cache tag: 'nope'" },
  {
    kind: 'unknown-keyword',
    tag: (e) => e.cache('60', 'side', [], body(e), { stael: '5' } as TagKeywordArgs),
    says: "unknown keyword 'stael' (did you mean 'stale'?)",
  },
  { kind: 'missing-end-tag', tag: (e) => e.cache('60', 'side', [], body(e)).replace(e.endCache, ''), says: /never closed/ },
  {
    kind: 'error-in-body',
    tag: (e) => e.cache('60', 'side', [], `\n${e.count()}\n`),
    context: {
      count: () => {
        throw new Error('the body failed');
      },
    },
    says: 'the body failed',
  },
  { kind: 'unknown-hole', tag: (e) => e.hole('nope'), says: "unknown hole 'nope'" },
  {
    kind: 'hole-argument-not-a-scalar',
    tag: (e) => e.hole('stock', ['$item']),
    context: { item: { id: 3 } },
    says: `hole 'stock' got {"id":3} as its argument 1`,
  },
];

const engines = ENGINES.map((engine) => engine());
let directory: string;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'cachegrain-error-sites-'));
  await configureCaches({ default: { backend: 'locmem', location: 'error-sites' } });
  defineHole('stock', (_req, id: number) => `${id} left`);
  for (const engine of engines) {
    for (const { kind, tag } of KINDS) {
      // Lines 1-3 hold plain text and a variable; the tag starts line 4.
      const source = `<p>one</p>\n<p>${engine.out('name')}</p>\n\n${tag(engine)}\n<p>after</p>\n`;
      writeFileSync(join(directory, `${kind}.${engine.extension}`), source);
    }
  }
});

afterAll(() => {
  forgetHole('stock');
  rmSync(directory, { recursive: true, force: true });
  return caches.closeAll();
});

describe.each(engines.map((engine) => [engine.name, engine] as const))('%s: tag errors name the template file and the line of the tag', (_name, engine) => {
  for (const [renderer, renderFile] of Object.entries(engine.fileRenderers)) {
    describe(renderer, () => {
      for (const { kind, context, says } of KINDS) {
        it(kind, async () => {
          const file = `${kind}.${engine.extension}`;
          const error = await renderFile(directory, file, { name: 'ann', ...context }).then(
            (html) => {
              throw new Error(`rendered instead of failing: ${html}`);
            },
            (failure: unknown) => failure as Error,
          );
          expect(error.message).toMatch(says);
          expect(error.message).toContain(join(directory, file));
          // A body's error is ours alone to word (the engine's own render has returned): it names the file once.
          if (kind === 'error-in-body') expect(error.message.split(join(directory, file))).toHaveLength(2);
          expect(error.message).toMatch(new RegExp(`\\bline ${TAG_LINE}\\b`, 'i'));
        });
      }
    });
  }
});

/**
 * The three template engines of the demo, each with the `cache` tag installed and registered as an
 * Express view engine: Nunjucks (.njk), Handlebars (.hbs), Eta (.eta). Fragment keys carry template
 * digests, so a deploy that edits a template renews the fragments that use it and keeps the others.
 * Surprise: Handlebars helpers cannot wait, so the Handlebars pages get their slow data before
 * rendering, while Nunjucks (an async filter) and Eta (`await`) fetch it inside the fragment body,
 * where a hit skips it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Express } from 'express';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { cachePlugin, expressEngine as etaEngine } from 'cachegrain/eta';
import { expressEngine as handlebarsEngine, installCacheHelper } from 'cachegrain/handlebars';
import { expressEngine as nunjucksEngine, installCacheTag } from 'cachegrain/nunjucks';
import { type Item, itemTag, recommendationsFor, recommendationTags } from './catalogue.js';

/** The demo's views, found from the project root so that the compiled demo in `dist/` finds them too. */
export const VIEWS = join(projectRoot(), 'examples', 'demo', 'views');

function projectRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(directory, 'package.json'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error(`the demo's views: no package.json above ${fileURLToPath(import.meta.url)}`);
    directory = parent;
  }
  return directory;
}

/** The time of day to the millisecond: fragments print it, so a cached one shows its age. */
export function clock(): string {
  return new Date().toISOString().slice(11, 23);
}

export function money(price: number): string {
  return `$${price.toFixed(2)}`;
}

/** Registers the engines on the app and points its views at the demo's. */
export function installEngines(app: Express): void {
  const env = installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(join(VIEWS, 'nunjucks')), { autoescape: true }), {
    digests: true,
  });
  env.addFilter('money', money);
  env.addFilter(
    'recommendations',
    (item: Item, done: (error: unknown, result?: Item[]) => void) => {
      recommendationsFor(item).then((found) => done(null, found), done);
    },
    true,
  );
  app.engine('njk', nunjucksEngine(env));

  const handlebars = installCacheHelper(Handlebars.create(), { digests: true });
  handlebars.registerHelper('money', money);
  handlebars.registerHelper('clock', clock);
  handlebars.registerHelper('itemTag', itemTag);
  handlebars.registerHelper('recommendationTags', recommendationTags);
  app.engine('hbs', handlebarsEngine(handlebars, { partialsDir: join(VIEWS, 'handlebars', 'partials') }));

  const eta = new Eta({ views: join(VIEWS, 'eta'), plugins: [cachePlugin({ digests: true })], cache: true });
  app.engine('eta', etaEngine(eta));

  app.set('views', VIEWS);
}

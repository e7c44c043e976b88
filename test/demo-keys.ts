/**
 * The keys a demo fragment can be stored under. The demo's engines put template digests in fragment
 * keys, so a fragment's key is made with the digest of the template that holds it: these are its keys
 * for every template of the demo, each digest computed by its engine's `templateDigest` on the demo's
 * views, as a script beside a deployed site would compute them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { makeTemplateFragmentKey } from 'cachegrain';
import { templateDigest as etaDigest } from 'cachegrain/eta';
import { installCacheHelper, templateDigest as handlebarsDigest } from 'cachegrain/handlebars';
import { installCacheTag, templateDigest as nunjucksDigest } from 'cachegrain/nunjucks';
import { VIEWS } from '../examples/demo/engines.js';

let digests: string[] | undefined;

/** The digest of every template of the demo. */
function demoDigests(): string[] {
  const templates = (folder: string) => readdirSync(join(VIEWS, folder)).filter((file) => /\.(njk|hbs|eta)$/.test(file));
  const env = installCacheTag(new nunjucks.Environment(new nunjucks.FileSystemLoader(join(VIEWS, 'nunjucks'))), { digests: true });
  const handlebars = installCacheHelper(Handlebars.create(), { digests: true });
  for (const file of templates('handlebars/partials'))
    handlebars.registerPartial(file.replace(/\.hbs$/, ''), readFileSync(join(VIEWS, 'handlebars/partials', file), 'utf8'));
  const eta = new Eta({ views: join(VIEWS, 'eta') });
  return [
    ...templates('nunjucks').map((file) => nunjucksDigest(env, file).digest),
    ...templates('handlebars/partials').map((file) => handlebarsDigest(handlebars, file.replace(/\.hbs$/, '')).digest),
    ...templates('handlebars').map((file) => handlebarsDigest(handlebars, handlebars.compile(readFileSync(join(VIEWS, 'handlebars', file), 'utf8'))).digest),
    ...templates('eta').map((file) => etaDigest(eta, file).digest),
  ];
}

/** The keys fragment `name` with these vary-on values has in the demo's templates, one per template. */
export function demoFragmentKeys(name: string, varyOn: unknown[]): string[] {
  return (digests ??= demoDigests()).map((digest) => makeTemplateFragmentKey(name, varyOn, undefined, digest));
}

/**
 * The templates a page was rendered from, and whether they are the templates this process renders
 * now. A render whose engine has digests on names its outermost template on the request's record
 * (`TemplateDigests.rendered`): by its engine and its name, or, for a template given as a string, by
 * what its source depends on. The page cache stores the page with those names and their digests as
 * one string; a hit computes that string in this process (once per list of names until an engine
 * reloads templates) and compares the two: a page whose templates changed since it was stored, in
 * this process or in the one that stored it, is a miss. The surprise: engines are named by their kind
 * and the order they were made in, which is the same in every process of a deploy.
 */
import { BoundedMemo } from '../common/bounded-memo.js';
import { processMemo } from '../common/process-memos.js';
import type { FoundDependencies, TemplateInputs } from './dependencies.js';

/** An engine instance's digests as a page reads them: of a template by its name, or of one given as a string. */
export interface PageEngine {
  /** The digest of template `name` as it is now; undefined when there is no template by that name. */
  digestNamed(name: string): string | undefined;
  /** The digest of a template given as a string, from the md5 of its source and what it depends on. */
  digestOfSource(hash: string, found: FoundDependencies): string;
}

/** A template a page was rendered from: its engine's name and its own, or, unnamed, its source's md5 and dependencies. */
type TemplateRef = [engine: string, name: string] | [engine: string, name: null, hash: string, found: FoundDependencies];

/** The digest of a template that cannot be read now: it equals no digest, so a page stored from it is a miss. */
const UNREADABLE = '-';

/** The engine instances with digests in this process, by the name pages give them; held weakly, as an application may make many. */
const engines = new Map<string, WeakRef<PageEngine>>();
/** How many engines of each kind were made. */
const made = new Map<string, number>();
/** Moves on whenever an engine is made or reloads templates: the digests remembered for pages are computed again. */
let epoch = 0;
/** The digests of each list of templates pages were stored with, as of `epoch`. */
const remembered = processMemo('digests/pages: digests by template list', new BoundedMemo<{ epoch: number; digests: string }>(1000));

/** Names an engine instance for the pages rendered with it: `nunjucks` for the first of its kind, `nunjucks#2` for the next. */
export function nameEngine(kind: string, engine: PageEngine): string {
  const count = (made.get(kind) ?? 0) + 1;
  made.set(kind, count);
  const name = count === 1 ? kind : `${kind}#${count}`;
  engines.set(name, new WeakRef(engine));
  epoch++;
  return name;
}

/** An engine reloaded templates: what pages were rendered from is read again. */
export function templatesReloaded(): void {
  epoch++;
}

/** How a page names a template of `engine`: by its name, or by what its source gives a digest. */
export function templateRef(engine: string, template: string | TemplateInputs): string {
  return JSON.stringify(typeof template === 'string' ? [engine, template] : [engine, null, template.hash, template.found]);
}

/** A page's templates and their digests, as the page cache stores them with it. */
export interface PageTemplates {
  templates: string;
  digests: string;
}

/** The templates of a render (as `templateRef` names them) with their digests now; undefined for none. */
export function pageTemplates(rendered: ReadonlySet<string>): PageTemplates | undefined {
  if (rendered.size === 0) return undefined;
  const templates = `[${[...rendered].sort().join(',')}]`;
  return { templates, digests: digestsNow(templates) };
}

/** Whether a stored page was rendered from the templates this process renders now; a page stored without templates always was. */
export function templatesUnchanged(page: Partial<PageTemplates>): boolean {
  return page.templates === undefined || digestsNow(page.templates) === page.digests;
}

function digestsNow(templates: string): string {
  const kept = remembered.get(templates);
  if (kept !== undefined && kept.epoch === epoch) return kept.digests;
  let digests: string;
  try {
    digests = (JSON.parse(templates) as TemplateRef[]).map(digestOf).join(' ');
  } catch {
    // Not a list this version writes: the page is rendered again.
    digests = UNREADABLE;
  }
  remembered.set(templates, { epoch, digests });
  return digests;
}

function digestOf(ref: TemplateRef): string {
  const engine = engines.get(ref[0])?.deref();
  if (engine === undefined) return UNREADABLE;
  if (ref[1] !== null) return engine.digestNamed(ref[1]) ?? UNREADABLE;
  return engine.digestOfSource(ref[2], ref[3]);
}

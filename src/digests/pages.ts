/**
 * The templates a page was rendered from, and whether they are the templates this process renders
 * now. A render whose engine has digests on names its outermost template on the request's record
 * (`TemplateDigests.rendered`): by its engine and its name, or, for a template given as a string, by
 * what its source depends on. The page cache stores the page with those names and their digests as
 * one string; a hit computes that string in this process (once per list of names until an engine
 * reloads templates) and compares the two: a page whose templates changed since it was stored, in
 * this process or in the one that stored it, is a miss. Each template also names the tag its pages
 * carry for the edge, which a deploy that changes it invalidates (`deploys.ts`). The surprise: engines
 * are named by their kind and the order they were made in, which is the same in every process of a deploy.
 */
import { BoundedMemo } from '../memos/bounded-memo.js';
import { processMemo } from '../memos/process-memos.js';
import type { FoundDependencies, TemplateInputs } from './dependencies.js';
import { reachesMissing, type TemplateDigestReport } from './walk.js';

/** An engine instance's digests as a page reads them: of a template by its name, or of one given as a string. */
export interface PageEngine {
  /** The digest of template `name` as it is now; undefined when there is no template by that name. */
  digestNamed(name: string): string | undefined;
  /** The digest of template `name` as it is now, with what it reaches; undefined when there is no template by that name. */
  reportNamed(name: string): TemplateDigestReport | undefined;
  /** The digest of a template given as a string, from the md5 of its source and what it depends on, with what it reaches. */
  reportOfSource(hash: string, found: FoundDependencies): TemplateDigestReport;
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
/** The tag of each template pages were rendered from. */
const tags = processMemo('digests/pages: tags by template', new BoundedMemo<string>(1000));
/** Told the name of each engine made from now on. */
const namingListeners: Array<(engine: string) => void> = [];

/** Names an engine instance for the pages rendered with it: `nunjucks` for the first of its kind, `nunjucks#2` for the next. */
export function nameEngine(kind: string, engine: PageEngine): string {
  const count = (made.get(kind) ?? 0) + 1;
  made.set(kind, count);
  const name = count === 1 ? kind : `${kind}#${count}`;
  engines.set(name, new WeakRef(engine));
  epoch++;
  for (const listener of namingListeners) listener(name);
  return name;
}

/** Tells `listener` the name of each engine made from now on (see `nameEngine`). */
export function whenEngineNamed(listener: (engine: string) => void): void {
  namingListeners.push(listener);
}

/** The names of the engines with digests this process has made and still holds. */
export function namedEngines(): string[] {
  return [...engines].filter(([, engine]) => engine.deref() !== undefined).map(([name]) => name);
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
  return engine.reportOfSource(ref[2], ref[3]).digest;
}

/**
 * The tag a page rendered from `template` (as `templateRef` names it) carries, for the edge in front
 * to be purged by when a deploy changes it: `template:<engine>:<name>` (`template:liquid:./page.liquid`),
 * a template given as a string by the md5 of its source (`template:liquid:<md5>`).
 */
export function templateTag(template: string): string {
  return tags.remember(template, () => {
    const ref = JSON.parse(template) as TemplateRef;
    return `template:${ref[0]}:${ref[1] ?? ref[2]}`;
  });
}

/** A template as this process renders it now (see `templateNow`). */
export interface TemplateNow {
  /** The name of its engine. */
  engine: string;
  /** Its digest; undefined when there is no template by its name now. */
  digest: string | undefined;
  /** Whether it reaches a template that was not found: a partial its engine is handed only at a render may be missing before one. */
  reachesMissing: boolean;
}

/** `template` (as `templateRef` names it) as this process renders it now; undefined when its engine is not made here, or the text names no template. */
export function templateNow(template: string): TemplateNow | undefined {
  const ref = parsedRef(template);
  const engine = ref === undefined ? undefined : engines.get(ref[0])?.deref();
  if (ref === undefined || engine === undefined) return undefined;
  const report = ref[1] === null ? engine.reportOfSource(ref[2], ref[3]) : engine.reportNamed(ref[1]);
  return { engine: ref[0], digest: report?.digest, reachesMissing: report !== undefined && reachesMissing(report.dependencies) };
}

/** The template `text` names as `templateRef` wrote it; undefined for text it did not write (a record of another version, say). */
function parsedRef(text: string): TemplateRef | undefined {
  try {
    const ref = JSON.parse(text) as unknown[];
    if (!Array.isArray(ref) || typeof ref[0] !== 'string') return undefined;
    if (typeof ref[1] === 'string' && ref.length === 2) return ref as TemplateRef;
    if (ref[1] === null && typeof ref[2] === 'string' && typeof ref[3] === 'object' && ref[3] !== null) return ref as TemplateRef;
  } catch {
    // Not JSON: no template of this version's.
  }
  return undefined;
}

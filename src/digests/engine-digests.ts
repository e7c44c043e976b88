/**
 * The digests of one engine instance's templates. When a template compiles, its tags are
 * given a key: what its source depends on, with a number of that compile. The digest is computed the
 * first time one of its fragments misses and kept under that key, so a hit computes nothing. A
 * template compiled again (watch mode, no cache) gets a new key, and so a digest computed afresh; an
 * engine that reports a template changed (`reloaded`, `learned`) makes every digest of the instance
 * computed afresh, so the templates that reach it renew too. An instance made with its engine's kind
 * also names the templates each render starts from to the page around it (see `pages.ts`).
 */
import { currentScope } from '../cacheability/request-scope.js';
import { md5 } from '../keys/hash.js';
import { BoundedMemo } from '../memos/bounded-memo.js';
import type { FoundDependencies, TemplateInputs } from './dependencies.js';
import { nameEngine, type PageEngine, templateRef, templatesReloaded } from './pages.js';
import { describeProblem, digestTemplate, type TemplateDigestReport, type TemplateLibrary } from './walk.js';

/** A library that also knows the templates its engine compiles by the names their tags' sites give. */
export interface EngineLibrary extends TemplateLibrary {
  /** The library's name of the template a tag's site names (a file path, say); undefined for one given as a string. */
  nameOf(site: string | undefined): string | undefined;
}

let compiles = 0;

/** The key a compiled template's tags carry: its source's md5 and dependencies, and the number of this compile. */
export function digestKey(source: string, found: FoundDependencies): string {
  return JSON.stringify([++compiles, md5(source), found]);
}

/** What a digest key says of its template's source: its md5 and dependencies. */
export function inputsOfKey(key: string): TemplateInputs {
  const [, hash, found] = JSON.parse(key) as [number, string, FoundDependencies];
  return { hash, found };
}

interface KeptDigest {
  value: string;
  generation: number;
}

export class TemplateDigests<Library extends EngineLibrary = EngineLibrary> implements PageEngine {
  /** Moves on whenever the engine reports a template changed: digests kept from before are computed again. */
  private generation = 0;
  private readonly kept = new BoundedMemo<KeptDigest>(1000);
  /** What each source depends on, by the md5 of its text: a template reached from many pages is parsed once. */
  private readonly findings = new BoundedMemo<FoundDependencies>(1000);
  /** The md5 of each named template's source as the engine last compiled or registered it. */
  private readonly sources = new BoundedMemo<string>();
  /** The problems reported since the last change: each once. */
  private reported = new BoundedMemo<true>();
  /** The key `held` last found a digest for, and what it found. */
  private lastHeld: { key: string; kept: KeptDigest } | undefined;
  /** The digests of templates by name, for the pages rendered from them. */
  private readonly named = new BoundedMemo<KeptDigest>(1000);
  /** The name pages give this instance; undefined when it was made without its engine's kind. */
  private readonly engine: string | undefined;

  /** `kind` (`nunjucks`): the pages rendered with this instance carry its templates' digests. */
  constructor(
    readonly library: Library,
    kind?: string,
  ) {
    this.engine = kind === undefined ? undefined : nameEngine(kind, this);
  }

  /** What `source` depends on, by the engine's finder. */
  readonly find = (source: string): FoundDependencies => this.findings.remember(md5(source), () => this.library.find(source));

  /** The key for the tags of a template compiled from `source` (see `digestKey`). */
  keyOf(source: string, found: FoundDependencies = this.find(source)): string {
    return digestKey(source, found);
  }

  /** The digest kept for a compiled template's key, if it still stands; nothing is computed. */
  held(key: string): string | undefined {
    // Every render of a page asks for its template's key: the last one found is checked first.
    const last = this.lastHeld;
    const kept = last?.key === key ? last.kept : this.kept.get(key);
    if (kept === undefined || kept.generation !== this.generation) return undefined;
    if (last?.kept !== kept) this.lastHeld = { key, kept };
    return kept.value;
  }

  /**
   * The digest for a compiled template's key, computed and kept when none stands; `site` names the
   * template as its tags do. Each dependency it cannot resolve is reported, once, through `report`.
   */
  digestOf(key: string, site: string | undefined, report: (message: string) => void): string {
    const held = this.held(key);
    if (held !== undefined) return held;
    const result = digestTemplate(this.library, this.find, this.library.nameOf(site), inputsOfKey(key));
    for (const problem of result.unresolved) {
      const text = `template digest: ${describeProblem(problem)}`;
      if (this.reported.get(text) !== undefined) continue;
      this.reported.set(text, true);
      report(text);
    }
    this.kept.set(key, { value: result.digest, generation: this.generation });
    return result.digest;
  }

  /**
   * A render of the template its engine names `site` begins or ends: the page around it, if the
   * render is for a request, is rendered from it. A template this instance cannot read by name is
   * named by its `source`, else by the digest key of its compile. Nothing is done for a render
   * outside a request, and so nothing is computed.
   */
  rendered(site: string | undefined, source?: string, digestKey?: string): void {
    const scope = currentScope();
    if (scope === undefined || this.engine === undefined) return;
    const name = this.library.nameOf(site);
    let ref: string;
    if (name !== undefined && this.digestNamed(name) !== undefined) ref = templateRef(this.engine, name);
    else if (source !== undefined) ref = templateRef(this.engine, { hash: md5(source), found: this.find(source) });
    else if (digestKey !== undefined) ref = templateRef(this.engine, inputsOfKey(digestKey));
    else return;
    scope.cacheability.addTemplates([ref]);
  }

  digestNamed(name: string): string | undefined {
    const kept = this.named.get(name);
    if (kept !== undefined && kept.generation === this.generation) return kept.value;
    const value = this.reportNamed(name)?.digest;
    if (value !== undefined) this.named.set(name, { value, generation: this.generation });
    return value;
  }

  reportNamed(name: string): TemplateDigestReport | undefined {
    try {
      return this.report(name);
    } catch {
      return undefined;
    }
  }

  reportOfSource(hash: string, found: FoundDependencies): TemplateDigestReport {
    return digestTemplate(this.library, this.find, undefined, { hash, found });
  }

  /** The engine changed templates: every digest is computed again when next needed. */
  reloaded(): void {
    this.generation++;
    templatesReloaded();
    // The last key held was found in the generation now over: what `held` finds next is looked up.
    this.lastHeld = undefined;
    this.reported = new BoundedMemo<true>();
  }

  /** The engine compiled or registered template `name` from `source`: a change of its source is a reload. */
  learned(name: string, source: string): void {
    const hash = md5(source);
    const before = this.sources.get(name);
    this.sources.set(name, hash);
    if (before !== undefined && before !== hash) this.reloaded();
  }

  /** The digest of the template `name` as it is now, with its dependency tree and what could not be resolved. */
  report(name: string): TemplateDigestReport {
    const read = this.library.read(name);
    if (read === undefined) throw new Error(`template digest: no template '${name}'`);
    return typeof read === 'string' ? this.reportOf(read, name) : digestTemplate(this.library, this.find, name, read);
  }

  /** The same for a template compiled from `source` (named `name`, if it has a name). */
  reportOf(source: string, name: string | undefined): TemplateDigestReport {
    return digestTemplate(this.library, this.find, name, { hash: md5(source), found: this.find(source) });
  }
}

/**
 * The parse of EJS's `cache(…)` calls: a template is rewritten before EJS compiles it, its tags
 * read by EJS's own syntax (ejs-syntax.ts) and the code in them by template-code.ts, so that a call
 * in a comment tag, a comment, a string or after a `<%%` stays text. Each `cache(` call that starts a
 * scriptlet is given its output function and site, and its body a buffer of its own; each `hole(` and
 * `uncacheable(` call in any tag its site. Lines stay as they were. Surprise: the body shadows EJS's
 * own output buffer (`__output`, `__append`) in its function, so the rewrite depends on those names.
 */
import { missingEndTag, TemplateSyntaxError } from '../fragments/index.js';
import { type EjsDelimiters, type EjsTag, ejsTags } from './ejs-syntax.js';
import { bracketBalance, callsFunction, isOnlyCall, placeTemplateCalls } from './template-code.js';
import { escapeRegExp, lineAt, RENDER_STATE } from './template-tag.js';

/** What EJS compiles a template with, as far as the rewrite reads it. */
export interface CompileOptions extends EjsDelimiters {
  filename?: string;
  async?: boolean;
  client?: boolean;
  localsName?: string;
}

/** The body's start: its own output buffer, in the names EJS's compiled code writes to, handed to the tag. */
const BODY_START =
  'async (__cgBuffer) => { let __output = ""; function __append(s) { if (s !== undefined && s !== null) __output += s; } __cgBuffer(() => __output);';
/** How a tag's body function opens, at the end of its scriptlet. */
const BODY_OPENING = /(?:async\s+)?(?:\(\s*\)\s*=>|function\s*\(\s*\))\s*\{\s*$/;

/** What one template's rewrite knows: the function's name, where its calls stand, and how they reach the render. */
interface Rewrite {
  readonly template: string;
  readonly functionName: string;
  /** A scriptlet that starts with a call of the function. */
  readonly call: RegExp;
  /** The template's name, as errors give it, and its digest key with digests on. */
  readonly site: string;
  readonly digestKey: string | undefined;
  /** The render, as the template's code reaches it: through its locals. */
  readonly runtime: string;
}

/** A template rewritten, and each piece of code changed paired with the code written: EJS's errors quote the code. */
export interface Rewritten {
  source: string;
  changes: Array<[string, string]>;
}

/** `template` (named `site`, its digest key `digestKey`) with its calls rewritten. */
export function rewriteTemplate(
  template: string,
  options: CompileOptions,
  { functionName, site, digestKey }: { functionName: string; site: string; digestKey: string | undefined },
): Rewritten {
  const rewrite: Rewrite = {
    template,
    functionName,
    call: startingCall(functionName),
    site,
    digestKey,
    runtime: `${options.localsName ?? 'locals'}.${RENDER_STATE}`,
  };
  const changes: Array<[string, string]> = [];
  let source = '';
  let copied = 0;
  for (const tag of ejsTags(template, options)) {
    const rewritten = tag.type === '#' ? undefined : rewriteTag(tag, rewrite);
    if (rewritten === undefined) continue;
    changes.push(rewritten.change);
    source += template.slice(copied, tag.start + tag.open.length) + rewritten.code;
    copied = tag.codeStart + tag.code.length;
  }
  return { source: source + template.slice(copied), changes };
}

/**
 * What a scriptlet or output tag is rewritten to after its opening delimiter (its type and code), and
 * the change an error's quote of it is read back with; undefined when it has no call to place.
 */
function rewriteTag(tag: EjsTag, rewrite: Rewrite): { code: string; change: [string, string] } | undefined {
  const { type, code, open } = tag;
  const scriptlet = type === '' || type === '_';
  if (scriptlet && rewrite.call.test(code)) {
    const opened = openFragment(tag, rewrite);
    return { code: type + opened, change: [opened, code] };
  }
  // A call of the tag that does not start its scriptlet (`<% if (a) cache(…, async () => { %>`) would find no `cache`.
  if ((!scriptlet && rewrite.call.test(code)) || (BODY_OPENING.test(code) && callsFunction(code, rewrite.functionName))) {
    throw new TemplateSyntaxError(
      `the '${rewrite.functionName}' call starts a scriptlet of its own, its body between tags of its own: <% ${rewrite.functionName}(600, 'sidebar', [user.id], async () => { %>…<% }) %>`,
      undefined,
      { template: rewrite.site, line: lineAt(rewrite.template, tag.start) },
    );
  }
  const placed = placeCalls(tag, rewrite);
  if (placed === code) return undefined;
  // A scriptlet that is one `hole(` call outputs it.
  const written = scriptlet && isOnlyCall(code, 'hole') ? `-${placed.replace(/;\s*$/, '')}` : `${type}${placed}`;
  return { code: written, change: [`${open}${written}`, `${open}${type}${code}`] };
}

/** `cache(timeout, name, [vary…], { keywords }, async () => {`, made a call of the render given the output function and site, its body opened with a buffer of its own. */
function openFragment({ code, start }: EjsTag, rewrite: Rewrite): string {
  const line = lineAt(rewrite.template, start);
  if (!BODY_OPENING.test(code)) {
    throw new TemplateSyntaxError(
      `the '${rewrite.functionName}' call ends with its body's opening, as in <% ${rewrite.functionName}(600, 'sidebar', [user.id], async () => { %>…<% }) %>`,
      undefined,
      { template: rewrite.site, line },
    );
  }
  // With digests, the call names its template's digest key first.
  const opening = rewrite.digestKey === undefined ? `${rewrite.runtime}.cache(` : `${rewrite.runtime}.cacheDigested(${JSON.stringify(rewrite.digestKey)}, `;
  return code.replace(rewrite.call, `$1${opening}__append, ${JSON.stringify(rewrite.site)}, ${line}, `).replace(BODY_OPENING, BODY_START);
}

/**
 * The code of `tag` with each `hole(` and `uncacheable(` call given its site; `uncacheable` marks the
 * output it stands in as it runs, so a call whose value is not output (a scriptlet, a condition) marks it too.
 */
function placeCalls({ code, start }: EjsTag, { template, site, runtime }: Rewrite): string {
  const file = JSON.stringify(site);
  return placeTemplateCalls(
    code,
    () => lineAt(template, start),
    (name, line) => (name === 'hole' ? `${runtime}.holeAt(${file}, ${line}, ` : `${runtime}.uncacheableAt(__append, ${file}, ${line}, `),
  );
}

/** The line of the innermost `cache(` call whose body is never closed, if any: brackets counted in the scriptlets' code. */
export function unclosedTagLine(template: string, options: CompileOptions, functionName: string): number | undefined {
  const call = startingCall(functionName);
  const open: Array<{ line: number; depth: number }> = [];
  let depth = 0;
  for (const { type, code, start } of ejsTags(template, options)) {
    if (type !== '' && type !== '_') continue;
    if (call.test(code)) open.push({ line: lineAt(template, start), depth });
    depth += bracketBalance(code);
    while (open.length > 0 && depth <= open.at(-1)!.depth) open.pop();
  }
  return open.at(-1)?.line;
}

/** A scriptlet's code that starts with a call of `functionName`, the space before it captured. */
function startingCall(functionName: string): RegExp {
  return new RegExp(`^(\\s*)${escapeRegExp(functionName)}\\s*\\(`);
}

/** The error of a template whose `cache(` body is never closed, naming the line of its call. */
export function unclosedTag(functionName: string, site: string, line: number): TemplateSyntaxError {
  return missingEndTag(functionName, '<% }) %>', { template: site, line });
}

/**
 * The parse of Pug's `+cache(timeout, 'name', vary…)(keyword=value…)` calls, with `+hole('name', …args)`
 * and `+uncacheable('why')`: as Pug compiles a template, each call in its tree is replaced by the code
 * that makes it, and each call of `hole(…)` and `uncacheable(…)` in its code is given its site.
 * Surprise: Pug's `each` declares its variables once per loop (`var`), so a body keeps the loop's
 * values as they were when the tag ran, bound to its function; any other variable it reads, it reads
 * as it is once the page is done.
 */
import { missingEndTag, type TagSite, TemplateSyntaxError, unknownKeyword } from '../fragments/index.js';
import { callsFunction, isOnlyCall, placeTemplateCalls } from './template-code.js';
import { RENDER_STATE } from './template-tag.js';

/** The parts of Pug's AST the rewrite reads and writes. */
export interface PugNode {
  type: string;
  line?: number;
  filename?: string;
  nodes?: PugNode[];
  block?: PugNode | null;
  name?: string;
  args?: string | null;
  call?: boolean;
  attrs?: Array<{ name: string; val: string | boolean }>;
  attributeBlocks?: unknown[];
  val?: string;
  key?: string;
  buffer?: boolean;
  mustEscape?: boolean;
  isInline?: boolean;
  [child: string]: unknown;
}

/** The code that reaches this render: the template's locals carry it, as Pug reads any other. */
export const RUNTIME = RENDER_STATE;

/** What a rewrite counts (the calls made), and with digests on, the digest key of the tags of each template file. */
export interface Rewrite {
  calls: number;
  digestKeyOf: ((file: string | undefined) => string | undefined) | undefined;
}

/** Replaces each call of the tag, `hole` and `uncacheable` in `ast` by the code that makes it; counts them. */
export function rewriteCalls(ast: PugNode, mixinName: string, rewrite: Rewrite, loops: string[] = []): PugNode {
  if (Array.isArray(ast.nodes)) ast.nodes = ast.nodes.flatMap((node) => rewriteNode(node, mixinName, rewrite, loops));
  const inLoop = ast.type === 'Each' ? [...loops, ...[ast.val, ast.key].filter((name): name is string => typeof name === 'string')] : loops;
  for (const [key, value] of Object.entries(ast)) {
    if (key === 'nodes') continue;
    if (value !== null && typeof value === 'object' && typeof (value as PugNode).type === 'string') rewriteCalls(value as PugNode, mixinName, rewrite, inLoop);
  }
  return ast;
}

/** `node` with its calls rewritten: a call of the tag or of a template mixin becomes the code that makes it. */
function rewriteNode(node: PugNode, mixinName: string, rewrite: Rewrite, loops: string[]): PugNode[] {
  if (node.type !== 'Mixin' || node.call !== true || ![mixinName, 'hole', 'uncacheable'].includes(node.name!)) {
    placeCodeCalls(node, mixinName, rewrite);
    return [rewriteCalls(node, mixinName, rewrite, loops)];
  }
  rewrite.calls++;
  const site: TagSite = { template: node.filename ?? 'a template string', line: node.line ?? 0 };
  if (node.attributeBlocks !== undefined && node.attributeBlocks.length > 0)
    throw new TemplateSyntaxError(`'+${node.name}' takes no &attributes`, undefined, site);
  if (node.name !== mixinName) return [templateMixinCall(node, site)];
  if (!node.block || node.block.nodes?.length === 0) throw missingEndTag(mixinName, `the block indented under +${mixinName}(…)`, site);
  const keywords = (node.attrs ?? []).map(({ name, val }) => {
    const unknown = unknownKeyword(name, `'+${mixinName}'`, site);
    if (unknown !== undefined) throw unknown;
    return `${JSON.stringify(name)}: ${String(val)}`;
  });
  rewriteCalls(node.block, mixinName, rewrite, loops);
  return [fragmentCode(node, { site, keywords, loops }, rewrite)];
}

/** `+hole('name', …args)` or `+uncacheable('why')`: the output of the render's call, given its site. */
function templateMixinCall(node: PugNode, site: TagSite): PugNode {
  if (node.block) throw new TemplateSyntaxError(`'+${node.name}' takes no block`, undefined, site);
  return { ...statement(`${RUNTIME}.${node.name}At(${JSON.stringify(site.template)}, ${site.line}, [${node.args ?? ''}])`, node), buffer: true };
}

/**
 * The code a cache call becomes: its arguments evaluated once, a hit this process keeps output, else
 * the fragment recorded with its body, a function of the loops' variables (`loops`) as they are now.
 */
function fragmentCode(node: PugNode, { site, keywords, loops }: { site: TagSite; keywords: string[]; loops: string[] }, rewrite: Rewrite): PugNode {
  const code = (val: string, extra: Partial<PugNode> = {}): PugNode => ({ ...statement(val, node), ...extra });
  // The body renders into the template's own buffer, emptied first: it runs once the template has returned.
  const body: PugNode = {
    type: 'Block',
    nodes: [code('pug_html = "";'), ...node.block!.nodes!, code(`return pug_html + ${RUNTIME}.takeMarks();`)],
    line: node.line,
  };
  // A named function, then the call: Pug may put a debug statement between any two nodes. Each
  // loop's variables are bound as they are now: the body runs after the loop has gone on.
  const [keywordsName, hit, bodyName] = ['Keywords', 'Hit', 'Body'].map((part) => `pug_cachegrain${part}${rewrite.calls}`) as [string, string, string];
  const bound = loops.length === 0 ? bodyName : `${bodyName}.bind(this, ${loops.join(', ')})`;
  const keywordsObject = keywords.length === 0 ? 'undefined' : `{ ${keywords.join(', ')} }`;
  const digest = digestLiteral(rewrite, node.filename);
  const keptArguments = [digest, keywordsName, node.args ?? ''].filter((part) => part.trim() !== '').join(', ');
  // A hit this process keeps is answered before anything else is made (the arguments' array, the
  // body's function, its binding), which only a miss needs; the arguments are evaluated once.
  return code(
    `var ${keywordsName} = ${keywordsObject}, ${hit} = ${RUNTIME}.kept(${keptArguments}); if (${hit} !== undefined) pug_html = pug_html + ${hit}; else`,
    {
      block: {
        type: 'Block',
        nodes: [
          code(`var ${bodyName} = function (${loops.join(', ')})`, { block: body }),
          code(
            `pug_html = pug_html + ${RUNTIME}.cache({ template: ${JSON.stringify(site.template)}, line: ${site.line}, digest: ${digest} }, ${RUNTIME}.missed(), ${keywordsName} ?? {}, ${bound});`,
          ),
        ],
        line: node.line,
      },
    },
  );
}

/** `"<digest key>"` of the template file that holds a tag, with digests on; else `undefined`. */
function digestLiteral(rewrite: Rewrite, file: string | undefined): string {
  const key = rewrite.digestKeyOf?.(file);
  return key === undefined ? 'undefined' : JSON.stringify(key);
}

/** Unbuffered code `val`, placed where `at` stands. */
export function statement(val: string, at: PugNode): PugNode {
  return { type: 'Code', val, buffer: false, mustEscape: false, isInline: false, line: at.line, filename: at.filename };
}

/**
 * Each call of `hole(…)` and `uncacheable(…)` in the code of `node` (`-`, `=`, `!=`, `#{}`, a condition,
 * a loop's object, an attribute, a mixin's arguments) made with its site; `uncacheable` marks the text being rendered
 * whatever becomes of its value, and `- hole(…)` alone outputs its hole, as `!=` does.
 */
function placeCodeCalls(node: PugNode, mixinName: string, rewrite: Rewrite): void {
  const template = JSON.stringify(node.filename ?? 'a template string');
  const place = (code: string) => {
    if (callsFunction(code, mixinName)) {
      const site = { template: node.filename ?? 'a template string', line: node.line ?? 0 };
      throw new TemplateSyntaxError(`'${mixinName}' is called as a mixin, its body indented under it: +${mixinName}(60, 'sidebar')`, undefined, site);
    }
    return placeTemplateCalls(
      code,
      () => node.line ?? 0,
      (name, line) => {
        rewrite.calls++;
        return `${RUNTIME}.${name}Call(${template}, ${line}, `;
      },
    );
  };
  if (node.type === 'Code' && typeof node.val === 'string') {
    const placed = place(node.val);
    if (node.buffer !== true && placed !== node.val && isOnlyCall(node.val, 'hole'))
      Object.assign(node, { buffer: true, mustEscape: false, val: placed.replace(/;\s*$/, '') });
    else node.val = placed;
  }
  for (const field of ['test', 'obj', 'expr']) if (typeof node[field] === 'string') node[field] = place(node[field]);
  // A call of the template's own mixin passes expressions; a definition's arguments are names.
  if (node.type === 'Mixin' && node.call === true && typeof node.args === 'string') node.args = place(node.args);
  for (const attribute of node.attrs ?? []) if (typeof attribute.val === 'string') attribute.val = place(attribute.val);
}

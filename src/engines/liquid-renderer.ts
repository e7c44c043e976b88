/**
 * What the `{% cache %}` tag changes and reads of LiquidJS's insides: its `_render`, which every
 * render, file render and parse-and-render goes through, made to start one fragment render for each
 * render that no render holds yet, carried in the render's globals to every context of it, partials'
 * and layouts' included; and a context's scopes, copied for a body rendered after a loop went on.
 * Written for LiquidJS 10.x, whose `_render` and Context these know: another version is refused at
 * install, read from the package the instance's class was loaded from.
 */
import type { Context, Liquid, Template } from 'liquidjs';
import { FragmentRender } from '../fragments/index.js';
import { checkEngineVersion, type EngineVersions, loadedModuleFile, packageVersionAt } from './engine-versions.js';
import { liquidDigests } from './liquid-digests.js';

/** The versions of LiquidJS whose render and contexts the tag knows. */
export const LIQUID_VERSIONS: EngineVersions = {
  adapter: 'cachegrain/liquid',
  engine: 'LiquidJS',
  packageName: 'liquidjs',
  reliesOn: "the cache tag patches LiquidJS's renderer",
  from: '10.0.0',
  throughMajor: 10,
};

/** Refuses a Liquid of a version outside `LIQUID_VERSIONS`, read from the package whose module exports its class. */
export function checkLiquidVersion(liquid: Liquid): void {
  const classes = new Set<unknown>();
  for (let prototype = Object.getPrototypeOf(liquid); prototype !== null; prototype = Object.getPrototypeOf(prototype)) classes.add(prototype.constructor);
  const file = loadedModuleFile((exports) => {
    const exported = typeof exports === 'object' && exports !== null ? Object.getOwnPropertyDescriptor(exports, 'Liquid') : undefined;
    return exported !== undefined && 'value' in exported && classes.has(exported.value);
  });
  checkEngineVersion(LIQUID_VERSIONS, packageVersionAt(file, LIQUID_VERSIONS.packageName));
}

/** Where a render's fragment state travels: in the globals of the render's contexts, which every partial's context shares. */
const RENDER = Symbol.for('cachegrain.liquid.render');

type Globals = Record<PropertyKey, unknown>;
type RenderArguments = [templates: Template[], scope: object | undefined, renderOptions: { globals?: Globals; sync?: boolean } | undefined];

/**
 * Makes each render of `liquid` that no render holds yet start one: its globals carry it to every
 * context of the render, and its output is the page with its fragments resolved.
 */
export function startRendersIn(liquid: Liquid): void {
  const engine = liquid as unknown as { _render(...args: RenderArguments): Generator<unknown, unknown, unknown> };
  const render = engine._render.bind(liquid);
  engine._render = function* renderWithFragments(templates, scope, renderOptions = {}) {
    const context = scope as Partial<Context> | undefined;
    const isContext = context !== undefined && context !== null && typeof context.spawn === 'function';
    if (isContext && (context.globals as Globals | undefined)?.[RENDER] instanceof FragmentRender) return yield render(templates, scope, renderOptions);
    const digests = liquidDigests(liquid);
    // With digests on, the page around the render is rendered from its first template's file or source.
    const first = (templates[0] as { token?: { file?: string; input?: string } } | undefined)?.token;
    digests?.rendered(first?.file, first?.input);
    const fragments = new FragmentRender(digests);
    if (isContext) {
      context.globals = { ...(context.globals as Globals), [RENDER]: fragments };
    } else {
      const globals = renderOptions.globals ?? (liquid.options.globals as Globals);
      renderOptions = { ...renderOptions, globals: { ...globals, [RENDER]: fragments } };
    }
    const output = (yield render(templates, scope, renderOptions)) as string;
    return yield fragments.finish(output);
  };
}

export function renderOf(ctx: Context): FragmentRender | undefined {
  const render = (ctx.globals as Globals | undefined)?.[RENDER];
  return render instanceof FragmentRender ? render : undefined;
}

/** What a context holds of a render's variables (its scopes are not in its public types). */
interface ContextState {
  environments: object;
  scopes: object[];
  registers: object;
}

/**
 * A context that reads as `ctx` does now: its scopes copied, and each loop's drop too (a loop moves
 * its drop on in place), for a body rendered after the loop went on.
 */
export function snapshot(ctx: Context): Context {
  const copy = ctx.spawn() as unknown as ContextState;
  const state = ctx as unknown as ContextState;
  copy.environments = state.environments;
  copy.scopes = state.scopes.map((scope) => {
    const copied = Object.assign(Object.create(null) as object, scope) as Record<string, unknown>;
    for (const [name, value] of Object.entries(copied)) {
      // A drop (of whichever copy of liquidjs) that moves on: a loop's.
      const drop = value as { next?: unknown; liquidMethodMissing?: unknown } | null;
      if (typeof drop === 'object' && drop !== null && typeof drop.next === 'function' && typeof drop.liquidMethodMissing === 'function') {
        copied[name] = Object.assign(Object.create(Object.getPrototypeOf(value) as object) as object, value);
      }
    }
    return copied;
  });
  copy.registers = { ...state.registers };
  return copy as unknown as Context;
}

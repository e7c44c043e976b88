/**
 * The backend contract says the same in its three places: the code (the `BackendPrimitives` interface
 * names every primitive, and `BackendContract` declares the ones a backend must implement abstract),
 * the doc comment at the top of the contract's file, and the manual's MUST / MAY table under
 * "Custom backends".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { manualSection } from './setup/manual.js';

const root = fileURLToPath(new URL('..', import.meta.url));
/** The file that declares the contract: the class a backend extends, and its doc comment. */
const CONTRACT = 'src/cache/backend-contract.ts';
/** The file that declares the primitives the cache's operations call (`BackendPrimitives`). */
const PRIMITIVES = 'src/store/backend-primitives.ts';

type Duty = 'MUST' | 'MAY';

/** Each primitive by name, MUST where `BackendContract` declares it abstract, MAY otherwise. */
function primitivesInCode(): Record<string, Duty> {
  const read = (file: string) => ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const source = read(CONTRACT);
  const primitives = read(PRIMITIVES);
  const declared = primitives.statements.find((statement) => ts.isInterfaceDeclaration(statement) && statement.name.text === 'BackendPrimitives');
  const base = source.statements.find((statement) => ts.isClassDeclaration(statement) && statement.name?.text === 'BackendContract');
  if (declared === undefined || !ts.isInterfaceDeclaration(declared)) throw new Error(`${PRIMITIVES} declares no interface BackendPrimitives`);
  if (base === undefined || !ts.isClassDeclaration(base)) throw new Error(`${CONTRACT} declares no class BackendContract`);
  const abstract = new Set(
    base.members
      .filter((member) => ts.getCombinedModifierFlags(member as ts.Declaration) & ts.ModifierFlags.Abstract)
      .map((member) => member.name!.getText(source)),
  );
  return Object.fromEntries(declared.members.map((member) => member.name!.getText(primitives)).map((name) => [name, abstract.has(name) ? 'MUST' : 'MAY']));
}

/** Each primitive by name as the doc comment at the top of the contract's file says it. */
function primitivesInDocComment(): Record<string, Duty> {
  const text = readFileSync(join(root, CONTRACT), 'utf8');
  const header = text.slice(0, text.indexOf('*/'));
  const sentence = (duty: Duty) => {
    const found = new RegExp(`backend ${duty} implement[^.]*\\.|It ${duty} implement[^]*?\\.\\s*\\n`).exec(header.replace(/\n \* ?/g, '\n'));
    if (found === null) throw new Error(`the doc comment at the top of ${CONTRACT} has no sentence saying what a backend ${duty} implement`);
    // The names of the primitives themselves, not those of what stands in for them (in parentheses).
    return [...found[0].replace(/\([^)]*\)/g, '').matchAll(/`(\w+)`/g)].map(([, name]) => [name!, duty] as const);
  };
  return Object.fromEntries([...sentence('MUST'), ...sentence('MAY')]);
}

/** Each primitive by name as the MUST / MAY table of the manual's "Custom backends" says it. */
function primitivesInManual(): Record<string, Duty> {
  const section = manualSection('### Custom backends').text;
  const rows = [...section.matchAll(/^\| `(\w+)` \| (MUST|MAY) \|/gm)].map(([, name, duty]) => [name!, duty as Duty] as const);
  return Object.fromEntries(rows);
}

describe('the backend contract', () => {
  it('names in its doc comment every primitive of the code, each a MUST or a MAY as the code makes it', () => {
    const code = primitivesInCode();
    expect(Object.values(code)).toContain('MUST');
    expect(Object.values(code)).toContain('MAY');
    expect(primitivesInDocComment()).toEqual(code);
  });

  it("has the manual's table list every primitive of the code, each a MUST or a MAY as the code makes it", () => {
    expect(primitivesInManual()).toEqual(primitivesInCode());
  });
});

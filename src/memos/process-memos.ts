/**
 * The process-wide memos of pure derivations (made keys, compiled template bodies, page digests):
 * each remembers what it would compute again from the same text, so emptying one changes no result,
 * only memory. Each registers itself here under a name, and `resetProcessMemos` empties them all from
 * one place (`caches.clearAll()` calls it). The memo stays the module's own constant: a hit reads it
 * directly, never through here.
 */

interface ProcessMemo {
  readonly size: number;
  clear(): void;
}

const registered = new Map<string, ProcessMemo>();

/** Registers `memo` under `name` (its module and what it remembers) and answers it. */
export function processMemo<M extends ProcessMemo>(name: string, memo: M): M {
  if (registered.has(name)) throw new Error(`processMemo: '${name}' is registered already`);
  registered.set(name, memo);
  return memo;
}

/** Empties every registered memo. */
export function resetProcessMemos(): void {
  for (const memo of registered.values()) memo.clear();
}

/** How many inputs each registered memo holds now, by name. */
export function processMemoSizes(): Map<string, number> {
  return new Map([...registered].map(([name, memo]) => [name, memo.size]));
}

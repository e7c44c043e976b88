/**
 * Option names are checked against the ones a backend takes: a misspelt option would otherwise be
 * ignored and its default used without a word (`maxEntires: 5` culling at 300).
 */

/** The error text for an option name that is not among `known`, or undefined when it is. */
export function unknownOptionMessage(name: string, known: readonly string[], where: string): string | undefined {
  if (known.includes(name)) return undefined;
  const closest = closestName(name, known);
  const hint = closest === undefined ? '' : ` (did you mean '${where}${closest}'?)`;
  return `unknown option '${where}${name}'${hint}; the options are ${known.map((option) => `'${where}${option}'`).join(', ')}`;
}

/** The first message for a name of `options` that is not among `known`. */
export function checkOptionNames(options: object, known: readonly string[], where = 'options.'): string | undefined {
  for (const name of Object.keys(options)) {
    const message = unknownOptionMessage(name, known, where);
    if (message !== undefined) return message;
  }
  return undefined;
}

/** The candidate nearest to `name` by edit distance (case aside), if one is near enough to be a slip. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.ceil(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = distance;
    }
  }
  return rows[a.length]![b.length]!;
}

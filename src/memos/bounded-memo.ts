/**
 * A memo of bounded size for values derived from repeating text (made keys, digests, page keys): a
 * site computes the same few thousand over and over. When full it starts afresh rather than track
 * recency, which costs nothing per hit; the inputs that still repeat are back after one miss each.
 */
export class BoundedMemo<V> {
  private readonly entries = new Map<string, V>();

  constructor(private limit = 10_000) {}

  get size(): number {
    return this.entries.size;
  }

  /** The most inputs it remembers. */
  get capacity(): number {
    return this.limit;
  }

  /** Remembers at most `limit` inputs from now on, starting afresh if it holds more. */
  limitTo(limit: number): void {
    this.limit = limit;
    if (this.entries.size > limit) this.entries.clear();
  }

  get(input: string): V | undefined {
    return this.entries.get(input);
  }

  set(input: string, value: V): V {
    if (this.entries.size >= this.limit) this.entries.clear();
    this.entries.set(input, value);
    return value;
  }

  /** Forgets every input. */
  clear(): void {
    this.entries.clear();
  }

  delete(input: string): void {
    this.entries.delete(input);
  }

  /** The remembered value for `input`, computed and remembered on a miss. */
  remember(input: string, compute: (input: string) => V): V {
    const known = this.entries.get(input);
    return known !== undefined ? known : this.set(input, compute(input));
  }
}

/**
 * What an edit of one item invalidates: everything that shows it carries the tag `item:<id>` (its
 * cached query results, its card and detail fragments, the recommendations listing it, and through
 * them every fragment and page holding those), so one call drops exactly that, in every cache and
 * every process sharing them.
 */
import { invalidateTags } from 'cachegrain';
import { itemTag, sectionOf } from './catalogue.js';

export async function invalidateItem(id: number): Promise<void> {
  if (sectionOf(id) === undefined) throw new RangeError(`invalidateItem: no item ${id}`);
  // The edit's form redirects to the item next: behind an edge, its purge must have landed first.
  await invalidateTags([itemTag(id)], { waitForEdges: true });
}

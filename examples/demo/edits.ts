/**
 * What an edit of one item invalidates, from code, and nothing more: the cached query results that
 * hold it, its fragments, and the pages it is shown on. Surprise: a cached outer fragment holds its
 * inner fragments' HTML, so dropping a `recommendations` fragment means dropping the cards and
 * details that contain it as well.
 */
import { caches, makeTemplateFragmentKey } from 'cachegrain';
import { invalidatePage } from 'cachegrain/express';
import { recommendersOf, type Section, sectionOf, sectionPageOf } from './catalogue.js';

/** The key prefix of the per-site page cache (HTML pages). */
export const SITE_PREFIX = 'site';
/** The key prefix of the per-view page cache (the JSON API). */
export const API_PREFIX = 'api';

/** The canonical URL path of a section page. */
export function sectionPath(section: Section, page: number): string {
  return page === 1 ? `/${section}` : `/${section}?page=${page}`;
}

/** What `invalidateItem` dropped, for the logs and the tests. */
export interface Invalidated {
  queries: string[];
  fragments: string[];
  pages: string[];
}

/** Drops everything that shows item `id`; `origin` is the site's scheme and host, as in `http://localhost:3000`. */
export async function invalidateItem(id: number, origin: string): Promise<Invalidated> {
  const section = sectionOf(id);
  if (section === undefined) throw new RangeError(`invalidateItem: no item ${id}`);
  // Items whose recommendations list this one show its title too.
  const recommenders = recommendersOf(id);
  const shownOn = [id, ...recommenders];

  const queries = [
    `item:${id}`,
    ...shownOn.map((other) => `section:${section}:${sectionPageOf(other)}`),
    ...recommenders.map((other) => `recommendations:${other}`),
  ];
  await caches.get('queries').deleteMany(queries);

  const fragments = [
    ...shownOn.flatMap((other) => [makeTemplateFragmentKey('card', [other]), makeTemplateFragmentKey('detail', [other])]),
    ...recommenders.map((other) => makeTemplateFragmentKey('recommendations', [other])),
  ];
  await caches.get('template_fragments').deleteMany(fragments);

  const pages = [
    ...new Set([...shownOn.map((other) => `${origin}/items/${other}`), ...shownOn.map((other) => `${origin}${sectionPath(section, sectionPageOf(other))}`)]),
  ];
  await Promise.all(pages.map((url) => invalidatePage(url, { keyPrefix: SITE_PREFIX })));
  await invalidatePage(`${origin}/api/items/${id}`, { keyPrefix: API_PREFIX });

  return { queries: [...new Set(queries)], fragments, pages: [...pages, `${origin}/api/items/${id}`] };
}

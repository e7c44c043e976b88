/**
 * The demo's data: a few hundred generated items in three sections, and "queries" that are slow
 * on purpose (a sleep standing in for an expensive database call), so that caching shows. The
 * data lives in memory; edits too, unless DEMO_EDITS_FILE keeps them for every process.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { recordQuery } from './metrics.js';

export type Section = 'books' | 'music' | 'films';

export interface Item {
  id: number;
  section: Section;
  title: string;
  creator: string;
  year: number;
  price: number;
  description: string;
  tags: string[];
}

const WORDS = [
  'amber',
  'silent',
  'river',
  'glass',
  'northern',
  'paper',
  'quiet',
  'harbour',
  'iron',
  'velvet',
  'winter',
  'garden',
  'signal',
  'lantern',
  'copper',
  'hollow',
];
const NAMES = ['Ada Byrne', 'Tomas Reyes', 'Mei Lin', 'Okon Eze', 'Sara Holm', 'Ravi Iyer', 'Lena Vogel', 'Jon Park'];
const SECTIONS: Section[] = ['books', 'music', 'films'];

function word(n: number): string {
  return WORDS[n % WORDS.length]!;
}

function generate(): Item[] {
  const items: Item[] = [];
  for (let id = 1; id <= 300; id++) {
    const title = `The ${word(id * 7)} ${word(id * 3 + 1)}`.replace(/\b\w/g, (c) => c.toUpperCase());
    items.push({
      id,
      section: SECTIONS[id % 3]!,
      title,
      creator: NAMES[id % NAMES.length]!,
      year: 1960 + ((id * 13) % 64),
      price: 5 + ((id * 37) % 4000) / 100,
      description: `A ${word(id)} and ${word(id + 5)} work about ${word(id + 9)} things, number ${id} of the catalogue.`,
      tags: [word(id), word(id + 2), word(id + 11)],
    });
  }
  return items;
}

const items = generate();
applySavedEdits();

/**
 * Where edits are kept when DEMO_EDITS_FILE names a file: then every process of the demo sees every
 * edit (each query reads the file), as processes sharing a database would. Without it they last
 * until the process stops.
 */
const EDITS_FILE = process.env.DEMO_EDITS_FILE;
type Edits = Record<string, Partial<Pick<Item, 'title' | 'price' | 'description'>>>;

function applySavedEdits(): void {
  const file = process.env.DEMO_EDITS_FILE;
  if (file === undefined || !existsSync(file)) return;
  for (const [id, changes] of Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Edits)) Object.assign(items[Number(id) - 1]!, changes);
}

/** How long a "query" takes, in milliseconds. */
export const QUERY_DELAY_MS = Number(process.env.DEMO_QUERY_DELAY_MS ?? 150);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Items shown per section page. */
export const PER_PAGE = 20;

export async function listSection(section: Section, page = 1, perPage = PER_PAGE): Promise<Item[]> {
  recordQuery();
  await sleep(QUERY_DELAY_MS);
  applySavedEdits();
  return items
    .filter((item) => item.section === section)
    .slice((page - 1) * perPage, page * perPage)
    .map((item) => ({ ...item }));
}

/** The ids a section page lists, without a query (ids are stable): what its cached list is tagged with. */
export function sectionItemIds(section: Section, page = 1, perPage = PER_PAGE): number[] {
  return items
    .filter((item) => item.section === section)
    .slice((page - 1) * perPage, page * perPage)
    .map((item) => item.id);
}

export async function getItem(id: number): Promise<Item | undefined> {
  recordQuery();
  await sleep(QUERY_DELAY_MS);
  applySavedEdits();
  const item = items.find((candidate) => candidate.id === id);
  return item && { ...item };
}

/**
 * The tag of everything that shows item `id`: its cached query results, the fragments and pages
 * that show it. Editing the item invalidates this one tag.
 */
export function itemTag(id: number): string {
  return `item:${id}`;
}

/** The tags of an item's recommendations: the items they show (known without the query). */
export function recommendationTags(item: Pick<Item, 'id'>): string[] {
  return recommendedIds(item.id).map(itemTag);
}

/** "Recommendations": the slowest query, shown in a nested fragment. */
export async function recommendationsFor(item: Pick<Item, 'id'>): Promise<Item[]> {
  recordQuery();
  await sleep(QUERY_DELAY_MS * 2);
  applySavedEdits();
  return recommendedIds(item.id).map((id) => ({ ...items[id - 1]! }));
}

/** The ids recommended beside an item: same section, a tag in common (tags never change). */
function recommendedIds(id: number): number[] {
  const item = items[id - 1]!;
  return items
    .filter((other) => other.section === item.section && other.id !== id && other.tags.some((t) => item.tags.includes(t)))
    .slice(0, 5)
    .map((other) => other.id);
}

/** The items whose recommendations show this one: their pages show its title, so an edit reaches them. */
export function recommendersOf(id: number): number[] {
  return items.filter((other) => other.id !== id && recommendedIds(other.id).includes(id)).map((other) => other.id);
}

/** The page of its section an item is listed on. */
export function sectionPageOf(id: number): number {
  const item = items[id - 1]!;
  const index = items.filter((other) => other.section === item.section).findIndex((other) => other.id === id);
  return Math.floor(index / PER_PAGE) + 1;
}

/** How many pages a section has. */
export function sectionPages(section: Section): number {
  return Math.ceil(items.filter((item) => item.section === section).length / PER_PAGE);
}

/** Which section an item is in, without a query (ids are stable). */
export function sectionOf(id: number): Section | undefined {
  return items[id - 1]?.section;
}

export function updateItem(id: number, changes: Partial<Pick<Item, 'title' | 'price' | 'description'>>): Item | undefined {
  const item = items.find((candidate) => candidate.id === id);
  if (item === undefined) return undefined;
  Object.assign(item, changes);
  if (EDITS_FILE !== undefined) {
    const saved = existsSync(EDITS_FILE) ? (JSON.parse(readFileSync(EDITS_FILE, 'utf8')) as Edits) : {};
    saved[id] = { ...saved[id], ...changes };
    writeFileSync(EDITS_FILE, JSON.stringify(saved));
  }
  return { ...item };
}

/** The canonical URL path of a section page. */
export function sectionPath(section: Section, page: number): string {
  return page === 1 ? `/${section}` : `/${section}?page=${page}`;
}

export const sections = SECTIONS;

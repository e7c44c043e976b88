/**
 * A tour of the low-level API on the embedded default (an in-memory cache): run with `npm start`.
 */
import { cache, caches, configureCaches, KeyNotFoundError } from 'cachegrain';

async function slowQuery(id: number): Promise<{ id: number; title: string }> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { id, title: `Article ${id}` };
}

configureCaches({
  default: { backend: 'locmem', timeout: 300 },
  files: { backend: 'filebased', location: `${process.env.TMPDIR ?? '/tmp'}/cachegrain-example`, timeout: 60 },
});

await cache.set('greeting', 'hello', 30);
console.log('get greeting          ->', await cache.get('greeting'));
console.log('get missing, default  ->', await cache.get('missing', 'a default'));
console.log('add over a live key   ->', await cache.add('greeting', 'bonjour'));

for (const attempt of [1, 2]) {
  const started = performance.now();
  const article = await cache.getOrSet('article:7', () => slowQuery(7), 60);
  console.log(`getOrSet attempt ${attempt}    ->`, article, `${Math.round(performance.now() - started)} ms`);
}

await cache.setMany({ a: 1, b: 2, c: 3 });
console.log('getMany a, b, z       ->', Object.fromEntries(await cache.getMany(['a', 'b', 'z'])));
console.log('incr a by 10          ->', await cache.incr('a', 10));
try {
  await cache.incr('nope');
} catch (error) {
  console.log('incr a missing key    ->', (error as KeyNotFoundError).message);
}
console.log('incrVersion b         ->', await cache.incrVersion('b'), '(b is now at version 2:', await cache.get('b', undefined, { version: 2 }), ')');

const files = caches.get('files');
await files.set('report', { rows: [1, 2, 3], at: new Date() });
console.log('filebased get report  ->', await files.get('report'));

await caches.closeAll();

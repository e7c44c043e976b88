/**
 * Text that only looks like a tag or a call is left as the engine reads it. EJS and Eta templates are
 * rewritten before their engine compiles them; the rewrite reads them as the engine's own parser
 * does: EJS's `<%%` literal and its comment tags, Eta's strings and block comments inside tags (where
 * a `%>` closes nothing), and the strings, template literals and comments of the code in a tag.
 */
import ejs from 'ejs';
import { Eta } from 'eta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ejsTag from '../../src/engines/ejs.js';
import { cachePlugin } from '../../src/engines/eta.js';
import { caches, configureCaches, makeTemplateFragmentKey } from '../../src/index.js';

beforeAll(() => configureCaches({ default: { backend: 'locmem', location: 'template-syntax' } }));
afterAll(() => caches.closeAll());

/** A counter a template's body calls: how many times the body ran. */
function counter(): () => number {
  let count = 0;
  return () => ++count;
}

describe('ejs: text that only looks like a call of the tag', () => {
  ejsTag.installCacheTag(ejs);
  const render = (source: string, data: object = {}) => ejs.render(source, data, { async: true }) as Promise<string>;

  it('reads a call after a <%% literal delimiter as a call', async () => {
    const n = counter();
    const source = "<p>Write <%% to open a tag.</p><% cache(60, 'after-literal', [], async () => { %>[<%= n() %>]<% }) %>";
    expect(await render(source, { n })).toBe('<p>Write <% to open a tag.</p>[1]');
    expect(await render(source, { n })).toBe('<p>Write <% to open a tag.</p>[1]');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('after-literal'))).toBe(true);
  });

  it('leaves a call in a comment tag alone', async () => {
    expect(await render("<%# cache(60, 'retired', [], async () => { %><p>kept</p>")).toBe('<p>kept</p>');
  });

  it('leaves a call in a comment of the code alone', async () => {
    const source = "<% // cache(60, 'retired', [], async () => { %><p>kept</p><% /* hole('cart') */ %>";
    expect(await render(source)).toBe('<p>kept</p>');
  });

  it('leaves a call in the text of a template literal alone, and places one in its ${…}', async () => {
    expect(await render('<%= `Call uncacheable("why") to opt out` %>')).toBe('Call uncacheable(&#34;why&#34;) to opt out');
    // A call in code marks the fragment around it, which is then not kept.
    await render("<% cache(60, 'interpolated-mark', [], async () => { %><%- `${uncacheable('a clock')}` %><% }) %>");
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('interpolated-mark'))).toBe(false);
  });

  it('leaves a call in a string alone, the tag after it a tag', async () => {
    const n = counter();
    const source =
      "<% const label = \"cache(60, 'x', [], async () => {\"; %><%= label %>|<% cache(60, 'after-string', [], async () => { %>[<%= n() %>]<% }) %>";
    expect(await render(source, { n })).toBe('cache(60, &#39;x&#39;, [], async () =&gt; {|[1]');
    expect(await render(source, { n })).toBe('cache(60, &#39;x&#39;, [], async () =&gt; {|[1]');
  });
});

describe('eta: text that only looks like a tag', () => {
  const eta = new Eta({ plugins: [cachePlugin()] });
  const plainEta = new Eta();
  const render = (source: string, data: object = {}) => eta.renderStringAsync(source, data);

  it('leaves a tag written in a string of another tag alone', async () => {
    const source = `<%= "<% cache 60 'x' %>" %>`;
    expect(await render(source)).toBe(plainEta.renderString(source, {}));
  });

  it('leaves a tag in a block comment of another tag alone', async () => {
    const source = '<% /* <% cache 60 "retired" %> */ %><p>kept</p>';
    expect(await render(source)).toBe('<p>kept</p>');
  });

  it('leaves an end tag written in a string inside the body alone', async () => {
    const n = counter();
    const source = '<% cache 60 "string-end" %><%= "<% endcache %>" %>[<%= it.n() %>]<% endcache %>';
    expect(await render(source, { n })).toBe('&lt;% endcache %&gt;[1]');
    expect(await render(source, { n })).toBe('&lt;% endcache %&gt;[1]');
  });

  it('reads a %> inside a string of the tag as part of the string', async () => {
    const n = counter();
    const source = '<% cache 60 "50%>" %>[<%= it.n() %>]<% endcache %>';
    expect(await render(source, { n })).toBe('[1]');
    expect(await render(source, { n })).toBe('[1]');
    expect(await caches.get('default').hasKey(makeTemplateFragmentKey('50%>'))).toBe(true);
  });

  it('leaves a call in the text of a template literal alone', async () => {
    const source = '<%= `Call hole("cart") or uncacheable("why")` %>';
    expect(await render(source)).toBe(plainEta.renderString(source, {}));
  });
});

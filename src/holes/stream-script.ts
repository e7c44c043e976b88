/**
 * The script a page with streamed holes loads: it moves each hole's `<template>` into the
 * placeholder it was sent for as the template arrives, and marks the browser as one that runs it (a
 * cookie), so that its next pages stream their holes out of order. It is one external file the
 * package serves, cacheable for a year under a name that changes with its text, so a page under
 * `Content-Security-Policy: script-src 'self'` needs no nonce and no `'unsafe-inline'` for it.
 *
 * The surprise: a template is taken only when its id carries the response's own nonce (read from
 * the script's tag) and names a placeholder not filled yet, and only as a child of the body, where
 * the page cache writes them: a hole's content cannot fill a placeholder it was not sent for, as no
 * content knows the nonce, and a template inside another's content is in no document.
 */
import { createHash } from 'node:crypto';

/** The cookie the script sets (`cachegrain-holes=script`): a browser that sends it runs the script, so its holes may come out of order. */
export const SCRIPT_RUNS_COOKIE = 'cachegrain-holes';
export const SCRIPT_RUNS_VALUE = 'script';

/** The element a streamed hole's placeholder is: it holds the hole's fallback until the hole arrives. */
export const PLACEHOLDER_ELEMENT = 'cachegrain-hole';

/** The attribute a streamed hole's template names its placeholder's id in. */
export const TEMPLATE_ATTRIBUTE = 'data-cachegrain-hole';

/** The attribute of the script's tag that names the response's nonce. */
export const NONCE_ATTRIBUTE = 'data-cachegrain-holes';

// Plain ES5 for every browser that streams; no global name is left behind. A template is taken
// once the parser has gone past its end (something follows it: the page cache writes a line break
// after each), as the parser may insert it before its content has all arrived. An async script may
// run once the page is parsed: it then places every template at once.
export const STREAM_SCRIPT = `(function () {
  'use strict';
  var script = document.currentScript;
  var nonce = script && script.getAttribute('${NONCE_ATTRIBUTE}');
  document.cookie = '${SCRIPT_RUNS_COOKIE}=${SCRIPT_RUNS_VALUE}; path=/; max-age=31536000; samesite=lax';
  if (!nonce || !document.body) return;
  var prefix = nonce + '-';
  var filled = {};
  function place(template, whole) {
    var id = template.getAttribute('${TEMPLATE_ATTRIBUTE}');
    if (!id || id.indexOf(prefix) !== 0 || filled[id] || template.parentNode !== document.body) return;
    if (!whole && !template.nextSibling) return;
    var holder = document.getElementById(id);
    if (!holder || holder.localName !== '${PLACEHOLDER_ELEMENT}') return;
    filled[id] = true;
    holder.replaceWith(template.content);
    template.remove();
  }
  function placeAll(whole) {
    var templates = document.body.querySelectorAll(':scope > template[${TEMPLATE_ATTRIBUTE}]');
    for (var i = 0; i < templates.length; i++) place(templates[i], whole);
  }
  if (document.readyState !== 'loading') return placeAll(true);
  placeAll(false);
  var watcher = new MutationObserver(function () {
    placeAll(false);
  });
  watcher.observe(document.body, { childList: true });
  document.addEventListener('DOMContentLoaded', function () {
    watcher.disconnect();
    placeAll(true);
  });
})();
`;

/** The start of the digest of the script's text: its name and its ETag. */
export const STREAM_SCRIPT_DIGEST = createHash('sha256').update(STREAM_SCRIPT).digest('hex').slice(0, 12);

/** The script's path: under the holes' own, named by its digest, so that a cached copy is always the current one. */
export const STREAM_SCRIPT_PATH = `/-/cachegrain/holes-${STREAM_SCRIPT_DIGEST}.js`;

/**
 * The tag that loads the script, naming the response's nonce, written once before the page's
 * `</body>`; with no nonce (a page with no placeholder), the script only sets its cookie.
 */
export function streamScriptTag(nonce: string): string {
  return nonce === ''
    ? `<script src="${STREAM_SCRIPT_PATH}" async></script>`
    : `<script src="${STREAM_SCRIPT_PATH}" async ${NONCE_ATTRIBUTE}="${nonce}"></script>`;
}

/** A streamed hole's placeholder, `id` its response's nonce and its index: its fallback until its template arrives. */
export function streamedPlaceholder(id: string, fallback: string): string {
  return `<${PLACEHOLDER_ELEMENT} id="${id}">${fallback}</${PLACEHOLDER_ELEMENT}>`;
}

/** The opening of the template a hole's HTML follows in: its placeholder's id. */
export function streamedTemplateOpening(id: string): string {
  return `<template ${TEMPLATE_ATTRIBUTE}="${id}">`;
}

/** What closes a hole's template: its end tag and a line break, which tells the script the template is whole. */
export const STREAMED_TEMPLATE_CLOSE = '</template>\n';

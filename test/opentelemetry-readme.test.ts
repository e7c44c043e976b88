/**
 * The manual's OpenTelemetry example runs as written: Prometheus scrapes the cachegrain metrics over
 * HTTP from the exporter's own server, with the route of the page the application served.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './setup/process.js';
import { readmeApp, startReadmeApp, whereShown } from './setup/readme.js';

describe(`${whereShown('telemetry.mjs')}: OpenTelemetry with Prometheus`, () => {
  const app = readmeApp(['telemetry.mjs']);
  afterAll(() => app.remove());

  it('serves the page hits, misses and cache operations on /metrics', async () => {
    const metricsPort = await freePort();
    const server = await startReadmeApp(app.dir, 'telemetry.mjs', { METRICS_PORT: String(metricsPort) });
    try {
      expect((await fetch(`${server.url}/items/1`)).headers.get('x-cache')).toBe('MISS');
      expect((await fetch(`${server.url}/items/1`)).headers.get('x-cache')).toBe('HIT');
      const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const lines = scraped.split('\n');
      const line = (...parts: string[]) => lines.find((candidate) => parts.every((part) => candidate.includes(part)));
      expect(line('cachegrain_page_lookups', 'http_route="/items/:id"', 'cachegrain_page_result="miss"'), scraped).toMatch(/ 1$/);
      expect(line('cachegrain_page_lookups', 'http_route="/items/:id"', 'cachegrain_page_result="hit"'), scraped).toMatch(/ 1$/);
      expect(line('cachegrain_cache_operations', 'cachegrain_cache_operation="getOrSet"', 'cachegrain_cache_result="miss"'), scraped).toMatch(/ 1$/);
      expect(line('cachegrain_cache_duration', 'cachegrain_cache_operation="getOrSet"'), scraped).toBeDefined();
    } finally {
      await server.stop();
    }
  }, 30_000);
});

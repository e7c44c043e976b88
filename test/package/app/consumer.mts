// Compiles under --strict with node16 and bundler resolution: the typed surface a user sees.
import { caches, configureCaches, type CacheConfig } from 'cachegrain';
import { cachePage } from 'cachegrain/express';
import { installCacheTag } from 'cachegrain/nunjucks';
import { cachegrain } from 'cachegrain/fastify';
import * as forKoa from 'cachegrain/koa';
import * as forHono from 'cachegrain/hono';
import * as forEjs from 'cachegrain/ejs';
import * as forPug from 'cachegrain/pug';
import * as forLiquid from 'cachegrain/liquid';
import { enableOpenTelemetry } from 'cachegrain/opentelemetry';
import { metrics } from '@opentelemetry/api';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { Liquid } from 'liquidjs';

/** Fastify's route config takes cachePage; Hono takes the middleware as it is; Koa's needs no @types/koa. */
export function frameworks(): unknown[] {
  const app = Fastify();
  void app.register(cachegrain, { seconds: 600 });
  app.get('/news', { config: { cachePage: { seconds: 60, tagHeader: 'Cache-Tag' } } }, async () => 'news');
  const hono = new Hono();
  hono.use(forHono.cacheMiddleware({ seconds: 600 }));
  return [app, hono, forKoa.cachePage(60), forEjs.installCacheTag, forPug.installCacheTag, forLiquid.installCacheTag(new Liquid())];
}

const config: Record<string, CacheConfig> = {
  default: { backend: 'locmem', options: { maxEntries: 500 } },
  shared: { backend: 'redis', location: 'redis://127.0.0.1:6379', options: { timeoutMs: 200, failOpen: true, client: { connectTimeout: 500 } } },
  rows: { backend: 'database', location: 'cache_table', options: { connection: 'sqlite::memory:' } },
};
export async function main(): Promise<string> {
  await configureCaches(config);
  const fallback: string = await caches.get('default').get('k', 'fallback');
  return fallback + String(typeof cachePage(60)) + String(typeof installCacheTag);
}

/** The OpenTelemetry bridge takes the API's providers, and answers what stops it. */
export function telemetry(): () => void {
  return enableOpenTelemetry({ meterProvider: metrics.getMeterProvider() });
}

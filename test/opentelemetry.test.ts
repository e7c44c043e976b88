/**
 * The OpenTelemetry bridge, read back from the real SDK: its metrics from an in-memory exporter, its
 * spans from an in-memory span exporter, for cache operations on locmem and Redis (a dead one too),
 * page lookups over real HTTP, and purges of an edge.
 */
import { context, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  AggregationTemporality,
  type DataPoint,
  type Histogram,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachePage } from '../src/frameworks/express.js';
import { caches, configureCaches, RedisCache } from '../src/index.js';
import { enableOpenTelemetry } from '../src/opentelemetry/index.js';
import { closedPort } from './setup/closed-port.js';
import { recordingEdge, type RecordingEdge } from './edge/recording-edge.js';
import { listen, send, storedHit } from './http/client.js';

const metricExporter = new InMemoryMetricExporter(AggregationTemporality.DELTA);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const spanExporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
let disable: () => void;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  disable = enableOpenTelemetry({ meterProvider, tracerProvider });
});
afterAll(async () => {
  disable();
  context.disable();
  await caches.closeAll();
  await meterProvider.shutdown();
});
beforeEach(async () => {
  await reader.forceFlush();
  metricExporter.reset();
  spanExporter.reset();
});

/** The points of metric `name` exported since the last test began, each with its attributes. */
async function points<T = number>(name: string): Promise<Array<DataPoint<T>>> {
  await reader.forceFlush();
  return metricExporter
    .getMetrics()
    .flatMap((resource) => resource.scopeMetrics)
    .filter((scope) => scope.scope.name === 'cachegrain')
    .flatMap((scope) => scope.metrics)
    .filter((metric) => metric.descriptor.name === name)
    .flatMap((metric) => metric.dataPoints as Array<DataPoint<T>>);
}

/** Each point's value under its attributes, as `{ ...attributes, value }`. */
async function counted(name: string): Promise<Array<Record<string, unknown>>> {
  return (await points(name)).map((point) => ({ ...point.attributes, value: point.value }));
}

const spansNamed = (name: string): ReadableSpan[] => spanExporter.getFinishedSpans().filter((span) => span.name === name);

describe('cache operations', () => {
  it('count hits, misses and writes per alias and operation, with their time in seconds, on locmem', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'otel-locmem' }, sessions: { backend: 'locmem', location: 'otel-sessions' } });
    const cache = caches.get('sessions');
    await cache.set('k', 1);
    await cache.get('k');
    await cache.get('k');
    await cache.get('gone');
    expect(await counted('cachegrain.cache.operations')).toEqual(
      expect.arrayContaining([
        { 'cachegrain.cache.alias': 'sessions', 'cachegrain.cache.operation': 'set', 'cachegrain.cache.result': 'ok', value: 1 },
        { 'cachegrain.cache.alias': 'sessions', 'cachegrain.cache.operation': 'get', 'cachegrain.cache.result': 'hit', value: 2 },
        { 'cachegrain.cache.alias': 'sessions', 'cachegrain.cache.operation': 'get', 'cachegrain.cache.result': 'miss', value: 1 },
      ]),
    );
    const durations = await points<Histogram>('cachegrain.cache.duration');
    const hits = durations.find((point) => point.attributes['cachegrain.cache.operation'] === 'get' && point.attributes['cachegrain.cache.result'] === 'hit');
    expect(hits?.value.count).toBe(2);
    // Seconds: a locmem get takes far less than one.
    expect(hits!.value.sum).toBeLessThan(1);
    const gets = spansNamed('cachegrain get');
    expect(gets.map((span) => span.attributes['cachegrain.cache.result'])).toEqual(['hit', 'hit', 'miss']);
    expect(gets[0]!.attributes['cachegrain.cache.alias']).toBe('sessions');
  });

  it('count stale hits of getOrSet', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'otel-stale' } });
    const cache = caches.get('default');
    await cache.set('k', 'old', { timeout: 60, tags: ['t'], staleWhileRevalidate: 60 });
    await cache.invalidateTags(['t'], { soft: true });
    let refreshed!: () => void;
    const refresh = new Promise<void>((resolve) => (refreshed = resolve));
    expect(
      await cache.getOrSet('k', () => {
        refreshed();
        return 'new';
      }),
    ).toBe('old');
    await refresh;
    expect(await counted('cachegrain.cache.operations')).toEqual(
      expect.arrayContaining([{ 'cachegrain.cache.alias': 'default', 'cachegrain.cache.operation': 'getOrSet', 'cachegrain.cache.result': 'stale', value: 1 }]),
    );
  });

  it('count hits and misses on Redis, and a span is the child of the span active when it was called', async () => {
    await configureCaches({ default: { backend: 'redis', location: process.env.CACHEGRAIN_TEST_REDIS_URL!, keyPrefix: 'otel' } });
    const cache = caches.get('default');
    await cache.set('k', 'v');
    const tracer = tracerProvider.getTracer('test');
    await tracer.startActiveSpan('request', async (request) => {
      await cache.get('k');
      await cache.get('absent');
      request.end();
    });
    expect(await counted('cachegrain.cache.operations')).toEqual(
      expect.arrayContaining([
        { 'cachegrain.cache.alias': 'default', 'cachegrain.cache.operation': 'get', 'cachegrain.cache.result': 'hit', value: 1 },
        { 'cachegrain.cache.alias': 'default', 'cachegrain.cache.operation': 'get', 'cachegrain.cache.result': 'miss', value: 1 },
      ]),
    );
    const [request] = spansNamed('request');
    const gets = spansNamed('cachegrain get');
    expect(gets.map((span) => [span.parentSpanContext?.spanId, span.attributes['cachegrain.cache.result']])).toEqual([
      [request!.spanContext().spanId, 'hit'],
      [request!.spanContext().spanId, 'miss'],
    ]);
  });

  it('count a dead Redis under failOpen as an error of the read it failed, and mark its span', async () => {
    const cache = new RedisCache({
      alias: 'dead',
      location: `redis://127.0.0.1:${await closedPort()}`,
      logger: { warn: () => undefined },
      options: { failOpen: true, timeoutMs: 300 },
    });
    try {
      expect(await cache.get('k', 'fallback')).toBe('fallback');
    } finally {
      await cache.close();
    }
    expect(await counted('cachegrain.cache.errors')).toEqual([
      expect.objectContaining({ 'cachegrain.cache.alias': 'dead', 'cachegrain.cache.operation': 'get', value: 1 }),
    ]);
    expect(await counted('cachegrain.cache.operations')).toEqual(
      expect.arrayContaining([{ 'cachegrain.cache.alias': 'dead', 'cachegrain.cache.operation': 'get', 'cachegrain.cache.result': 'miss', value: 1 }]),
    );
    const [get] = spansNamed('cachegrain get');
    expect(get!.status.code).toBe(SpanStatusCode.ERROR);
    expect(get!.events.map((event) => event.name)).toContain('exception');
  });

  it('count an operation that throws as an error, with its error type', async () => {
    const cache = new RedisCache({
      alias: 'dead',
      location: `redis://127.0.0.1:${await closedPort()}`,
      logger: { warn: () => undefined },
      options: { timeoutMs: 300 },
    });
    try {
      await expect(cache.get('k')).rejects.toThrow();
    } finally {
      await cache.close();
    }
    expect(await counted('cachegrain.cache.operations')).toEqual([
      expect.objectContaining({ 'cachegrain.cache.alias': 'dead', 'cachegrain.cache.operation': 'get', 'cachegrain.cache.result': 'error', value: 1 }),
    ]);
    expect(spansNamed('cachegrain get')[0]!.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('page lookups over HTTP', () => {
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'otel-pages' } });
    const app = express();
    app.get('/items/:id', cachePage(60), (req, res) => {
      res.send(`item ${req.params.id}`);
    });
    app.post('/items/:id', cachePage(60), (_req, res) => {
      res.send('posted');
    });
    app.get('/private/:id', cachePage(60), (_req, res) => {
      res.set('Cache-Control', 'private').send('mine');
    });
    server = await listen(app);
  });
  afterAll(() => server.close());

  it('count a miss, a hit and bypasses per route, as X-Cache says them', async () => {
    expect((await send(server.url, '/items/1')).headers['x-cache']).toBe('MISS');
    await storedHit(server.url, '/items/1');
    expect((await send(server.url, '/items/2', { method: 'POST' })).headers['x-cache']).toBe('BYPASS');
    expect((await send(server.url, '/private/3')).headers['x-cache']).toBe('BYPASS');
    const lookups = await counted('cachegrain.page.lookups');
    const of = (route: string, result: string) =>
      lookups
        .filter((point) => point['http.route'] === route && point['cachegrain.page.result'] === result)
        .reduce((sum, point) => sum + Number(point.value), 0);
    expect([of('/items/:id', 'miss'), of('/items/:id', 'hit') >= 1, of('/items/:id', 'bypass'), of('/private/:id', 'bypass')]).toEqual([1, true, 1, 1]);
    expect(lookups.every((point) => point['cachegrain.cache.alias'] === 'default')).toBe(true);
  });

  it('trace a lookup as a span holding the reads it made, under the span active for the request', async () => {
    const tracer = tracerProvider.getTracer('test');
    const app = express();
    app.use((_req, _res, next) =>
      tracer.startActiveSpan('GET', (span) => {
        _res.on('finish', () => span.end());
        next();
      }),
    );
    app.get('/traced', cachePage(60), (_req, res) => {
      res.send('traced');
    });
    const traced = await listen(app);
    try {
      await send(traced.url, '/traced');
      await storedHit(traced.url, '/traced');
    } finally {
      await traced.close();
    }
    const lookups = spansNamed('cachegrain page lookup');
    const hit = lookups.find((span) => span.attributes['cachegrain.page.result'] === 'hit')!;
    expect(hit.attributes['http.route']).toBe('/traced');
    expect(hit.attributes['http.request.method']).toBe('GET');
    const request = spansNamed('GET').find((span) => span.spanContext().traceId === hit.spanContext().traceId)!;
    expect(hit.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    const reads = spansNamed('cachegrain get').filter((span) => span.parentSpanContext?.spanId === hit.spanContext().spanId);
    expect(reads.map((span) => span.attributes['cachegrain.cache.result'])).toEqual(['hit', 'hit']);
    expect(lookups.find((span) => span.attributes['cachegrain.page.result'] === 'miss')).toBeDefined();
  });
});

describe('edge purges', () => {
  let edge: RecordingEdge;
  beforeAll(async () => {
    edge = await recordingEdge();
  });
  afterAll(() => edge.close());
  afterEach(() => (edge.answers.length = 0));

  it('count purges sent and failed per alias', async () => {
    await configureCaches({ default: { backend: 'locmem', location: 'otel-purges', purge: [{ edge: 'http', url: edge.url, tries: 1 }] } });
    const cache = caches.get('default');
    cache.on('error', () => undefined);
    await cache.invalidateTags(['a']);
    await cache.purgesSettled();
    edge.answers.push(403);
    await cache.invalidateTags(['b']);
    await cache.purgesSettled();
    expect(await counted('cachegrain.edge.purges')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ 'cachegrain.cache.alias': 'default', 'cachegrain.edge.result': 'sent', value: 1 }),
        expect.objectContaining({ 'cachegrain.cache.alias': 'default', 'cachegrain.edge.result': 'failed', value: 1 }),
      ]),
    );
  });
});

describe('without an SDK', () => {
  it('subscribes to nothing: no provider but the API’s no-op ones', async () => {
    const { hasSubscribers } = await import('node:diagnostics_channel');
    disable();
    try {
      const off = enableOpenTelemetry();
      expect(hasSubscribers('cachegrain:get')).toBe(false);
      off();
    } finally {
      disable = enableOpenTelemetry({ meterProvider, tracerProvider });
    }
    expect(hasSubscribers('cachegrain:get')).toBe(true);
  });
});

/**
 * OpenTelemetry for the caches, through `@opentelemetry/api` (an optional peer): metrics and spans of
 * cache operations, page lookups and edge purges. Nothing here is loaded until the application imports
 * `cachegrain/opentelemetry`; `enableOpenTelemetry()` then subscribes to the diagnostics channels the
 * caches publish on and plugs a tracer in, and with only the API's no-op providers it does neither.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type * as Api from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter, MeterProvider, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import { requirePeer } from '../backends/peer.js';
import {
  CACHE_OPERATIONS,
  type CacheErrorEvent,
  type CacheEvent,
  type CacheOperation,
  type CacheOutcome,
  type CacheTracer,
  channelName,
  type PageEvent,
  type PurgeEvent,
  type TracedWork,
  tracing,
} from '../observation/observation.js';

/** Where the metrics and spans go. */
export interface OpenTelemetryOptions {
  /** @default the global meter provider (`metrics.getMeterProvider()`) */
  meterProvider?: MeterProvider;
  /** @default the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
}

/** The instrumentation scope every metric and span is recorded under. */
export const INSTRUMENTATION_SCOPE = 'cachegrain';

/** The attributes' names. */
const ALIAS = 'cachegrain.cache.alias';
const OPERATION = 'cachegrain.cache.operation';
const RESULT = 'cachegrain.cache.result';
const PAGE_RESULT = 'cachegrain.page.result';
const EDGE = 'cachegrain.edge.name';
const EDGE_RESULT = 'cachegrain.edge.result';
const ERROR_TYPE = 'error.type';
const ROUTE = 'http.route';
const METHOD = 'http.request.method';

/**
 * Records the caches' work with OpenTelemetry, on the providers given or the global ones: call it
 * once the SDK is started (a provider registered later is not seen). Answers the function that
 * stops it. With the API's no-op providers (no SDK), nothing is subscribed and nothing is paid.
 */
export function enableOpenTelemetry(options: OpenTelemetryOptions = {}): () => void {
  // Enabled again (other providers, say), it records once, on the providers of the latest call.
  enabled?.();
  enabled = undefined;
  const api = requirePeer<typeof Api>('@opentelemetry/api', 'enableOpenTelemetry');
  const meter = options.meterProvider?.getMeter(INSTRUMENTATION_SCOPE) ?? globalMeter(api);
  const tracer = options.tracerProvider?.getTracer(INSTRUMENTATION_SCOPE) ?? globalTracer(api);
  const subscriptions: Array<[channel: string, listener: (message: unknown) => void]> = [];
  const spans = tracer === undefined ? undefined : new SpanBridge(api, tracer);
  const metrics = meter === undefined ? undefined : new MetricsBridge(meter);
  if (metrics === undefined && spans === undefined) return () => undefined;
  // An operation is observed (and its span begun) only while its channel has a subscriber.
  const onOperation = metrics === undefined ? () => undefined : (message: unknown) => metrics.operation(message as CacheEvent);
  for (const operation of CACHE_OPERATIONS) subscriptions.push([channelName(operation), onOperation]);
  subscriptions.push([
    'cachegrain:error',
    (message) => {
      const event = message as CacheErrorEvent;
      const operation = spans?.failed(event.error);
      metrics?.error(event, operation);
    },
  ]);
  if (metrics !== undefined) {
    subscriptions.push(['cachegrain:page', (message) => metrics.page(message as PageEvent)]);
    subscriptions.push(['cachegrain:purge', (message) => metrics.purge(message as PurgeEvent)]);
  }
  for (const [name, listener] of subscriptions) subscribe(name, listener);
  if (spans !== undefined) tracing.tracer = spans;
  const disable = function disableOpenTelemetry() {
    for (const [name, listener] of subscriptions.splice(0)) unsubscribe(name, listener);
    if (tracing.tracer === spans) tracing.tracer = undefined;
    if (enabled === disable) enabled = undefined;
  };
  return (enabled = disable);
}

/** What stops the recording enabled last, while it runs. */
let enabled: (() => void) | undefined;

/** The global meter, unless it is the API's no-op one. */
function globalMeter(api: typeof Api): Meter | undefined {
  const meter = api.metrics.getMeter(INSTRUMENTATION_SCOPE);
  return meter instanceof api.createNoopMeter().constructor ? undefined : meter;
}

/** The global tracer, unless no SDK registered one (the API's proxy then has nothing to hand on to). */
function globalTracer(api: typeof Api): Tracer | undefined {
  const provider = api.trace.getTracerProvider() as TracerProvider & { getDelegateTracer?(name: string): Tracer | undefined };
  if (provider.getDelegateTracer !== undefined && provider.getDelegateTracer(INSTRUMENTATION_SCOPE) === undefined) return undefined;
  return provider.getTracer(INSTRUMENTATION_SCOPE);
}

/** The instruments, and their attribute sets made once per combination (a hit records with no new object). */
class MetricsBridge {
  private readonly operations: Counter;
  private readonly duration: Histogram;
  private readonly errors: Counter;
  private readonly lookups: Counter;
  private readonly purges: Counter;
  private readonly attributes = new Map<string, Attributes>();

  constructor(meter: Meter) {
    this.operations = meter.createCounter('cachegrain.cache.operations', {
      description: 'Cache operations, by alias, operation and result',
      unit: '{operation}',
    });
    this.duration = meter.createHistogram('cachegrain.cache.duration', {
      description: 'Time from a cache operation to its answer',
      unit: 's',
      // From a read in this process (microseconds) to a server's timeout (seconds).
      advice: { explicitBucketBoundaries: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
    });
    this.errors = meter.createCounter('cachegrain.cache.errors', { description: 'Server failures, thrown or answered as misses (failOpen)', unit: '{error}' });
    this.lookups = meter.createCounter('cachegrain.page.lookups', { description: 'Page cache lookups, by route and result', unit: '{request}' });
    this.purges = meter.createCounter('cachegrain.edge.purges', { description: 'Purge requests to the edges, sent or given up', unit: '{request}' });
  }

  operation(event: CacheEvent): void {
    const error = event.outcome === 'error' ? errorType(event.error) : undefined;
    const attributes = this.of(`o\u0000${event.alias}\u0000${event.operation}\u0000${event.outcome}\u0000${error ?? ''}`, () => ({
      [ALIAS]: event.alias,
      [OPERATION]: event.operation,
      [RESULT]: event.outcome,
      ...(error === undefined ? {} : { [ERROR_TYPE]: error }),
    }));
    this.operations.add(1, attributes);
    this.duration.record(event.duration / 1000, attributes);
  }

  /** `operation`: the one whose span was active when the error happened, when spans are recorded. */
  error(event: CacheErrorEvent, operation: CacheOperation | undefined): void {
    const type = errorType(event.error);
    const attributes = this.of(`e\u0000${event.alias}\u0000${operation ?? ''}\u0000${type}`, () => ({
      [ALIAS]: event.alias,
      ...(operation === undefined ? {} : { [OPERATION]: operation }),
      [ERROR_TYPE]: type,
    }));
    this.errors.add(1, attributes);
  }

  page(event: PageEvent): void {
    const attributes = this.of(`p\u0000${event.alias}\u0000${event.route}\u0000${event.method}\u0000${event.outcome}`, () => ({
      [ALIAS]: event.alias,
      [ROUTE]: event.route,
      [METHOD]: event.method,
      [PAGE_RESULT]: event.outcome,
    }));
    this.lookups.add(1, attributes);
  }

  purge(event: PurgeEvent): void {
    const attributes = this.of(`e\u0000${event.alias}\u0000${event.edge}\u0000${event.outcome}`, () => ({
      [ALIAS]: event.alias,
      [EDGE]: event.edge,
      [EDGE_RESULT]: event.outcome,
    }));
    this.purges.add(1, attributes);
  }

  private of(key: string, make: () => Attributes): Attributes {
    let attributes = this.attributes.get(key);
    if (attributes === undefined) this.attributes.set(key, (attributes = Object.freeze(make())));
    return attributes;
  }
}

/** Begins the spans of cache operations and page lookups, each a child of the span active when it began. */
class SpanBridge implements CacheTracer {
  /** The operation each span of ours stands for, so that a failure met inside it is put on it. */
  private readonly operations = new WeakMap<Span, CacheOperation | 'page'>();

  constructor(
    private readonly api: typeof Api,
    private readonly tracer: Tracer,
  ) {}

  operation(operation: CacheOperation, alias: string): TracedWork {
    return this.begin(`cachegrain ${operation}`, operation, { [ALIAS]: alias, [OPERATION]: operation }, RESULT);
  }

  pageLookup(alias: string, method: string): TracedWork {
    return this.begin('cachegrain page lookup', 'page', { [ALIAS]: alias, [METHOD]: method }, PAGE_RESULT);
  }

  /** Marks the span of ours active now as failed by `error` (a failure failOpen answered as a miss); answers its operation. */
  failed(error: Error): CacheOperation | undefined {
    const span = this.api.trace.getSpan(this.api.context.active());
    const operation = span === undefined ? undefined : this.operations.get(span);
    if (operation === undefined) return undefined;
    markFailed(this.api, span!, error);
    return operation === 'page' ? undefined : operation;
  }

  private begin(name: string, operation: CacheOperation | 'page', attributes: Attributes, resultName: string): TracedWork {
    const { api } = this;
    const parent = api.context.active();
    const span = this.tracer.startSpan(name, { attributes }, parent);
    this.operations.set(span, operation);
    const inside = api.trace.setSpan(parent, span);
    return {
      run: (work) => api.context.with(inside, work),
      route: (route) => span.setAttribute(ROUTE, route),
      end: (outcome: CacheOutcome | PageEvent['outcome'], error?: unknown) => {
        span.setAttribute(resultName, outcome);
        if (outcome === 'error') markFailed(api, span, error);
        span.end();
      },
    };
  }
}

function markFailed(api: typeof Api, span: Span, error: unknown): void {
  span.setAttribute(ERROR_TYPE, errorType(error));
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** An error's type as OpenTelemetry names it: its class's name. */
function errorType(error: unknown): string {
  return error instanceof Error ? error.name : '_OTHER';
}

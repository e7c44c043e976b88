/**
 * cachegrain/http: framework-free header, page-key and page-cache utilities over Node's
 * `IncomingMessage` and `ServerResponse`. `cachegrain/express` turns them into middleware.
 */
// Node's types (Buffer, node:http, node:diagnostics_channel…) appear in these declarations: a consumer need not name them in `types`.
/// <reference types="node" preserve="true" />
export { directiveNames, maxAgeOf, secondsOf, splitHeaderValue } from '../headers/header-values.js';
export {
  addNeverCacheHeaders,
  appendVary,
  getMaxAge,
  hasVaryHeader,
  httpDate,
  mergeCacheControl,
  patchCacheControl,
  patchResponseHeaders,
  patchVaryHeaders,
  varyIncludes,
} from '../headers/headers.js';
export type { CacheControlDirectives } from '../headers/headers.js';
export { hasPreconditions, parseEtags, parseHttpDate, preconditionStatus, strongEtag } from '../headers/conditional.js';
export type { Validators } from '../headers/conditional.js';
export {
  absoluteUrl,
  addCacheContexts,
  addCacheTags,
  getCacheKey,
  headerValuesHash,
  invalidatePage,
  learnCacheKey,
  markUncacheable,
  requestPath,
  urlTag,
  variantHash,
  varyHeaderList,
} from '../pages/page-keys.js';
export { CacheContextError, contextValue, defineCacheContext, foldContexts, forgetCacheContext } from '../cacheability/contexts.js';
export type { CacheContextOptions, ContextValue, DefineCacheContext } from '../cacheability/contexts.js';
export { cacheScope } from '../pages/page-holes.js';
export type { HoleMode } from '../pages/page-holes.js';
export { holeHandler } from '../pages/hole-handler.js';
export type { HoleHandlerOptions } from '../pages/hole-handler.js';
export { defineHole, forgetHole, HoleError } from '../holes/index.js';
export type { DefineHole, HoleArgument, HoleBuilder, HoleOptions } from '../holes/index.js';
export type { InvalidatePageOptions, LearnedHeaders, PageKeyOptions } from '../pages/page-keys.js';
export {
  bodyTooLargeReason,
  cacheTimeout,
  REQUEST_POLICIES,
  requestRefusal,
  RESPONSE_POLICIES,
  storageDecision,
  uncacheableReason,
  varyOnCredentials,
} from '../pages/policy.js';
export type { PolicyContext, Refusal, RequestPolicy, ResponsePolicy, StorageDecision, StorageRules } from '../pages/policy.js';
export { holdResponse, teeResponse } from '../headers/capture.js';
export type { HeadDecision, TeeHooks } from '../headers/capture.js';
export { beforeHeaders, conditionalGetResponse } from '../headers/response-phase.js';
export { cacheControlDecorator, conditionalGetDecorator, neverCacheDecorator, varyOnCookieDecorator, varyOnHeadersDecorator } from '../headers/decorators.js';
export type { ConditionalGetOptions, ResponseDecorator } from '../headers/decorators.js';
export { DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_SECONDS, PageCache, pageStats, resetPageStats } from '../pages/page-cache.js';
export { nameRoute, pageVariants } from '../pages/page-stats.js';
export type { RouteVariants } from '../pages/page-stats.js';
export { REFRESH_HEADER } from '../pages/page-refresh.js';
export { DEFAULT_MAX_LENGTH, DEFAULT_MAX_LINE_LENGTH, tagHeaderLines } from '../pages/tag-header.js';
export type { TagHeader, TagHeaderFormat, TagHeaderOption } from '../pages/tag-header.js';
export type { PageCacheOptions, StoredPage } from '../pages/page-cache.js';
export { dashboardHandler } from '../dashboard/dashboard.js';
export type { DashboardOptions, MountedDashboardOptions } from '../dashboard/dashboard.js';

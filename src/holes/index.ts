/** Holes: the parts of a cached page that are never cached, made for each request by a named builder. */
export { defineHole, definedHole, forgetHole, HoleError, holeArguments, holeNamed } from './registry.js';
export type { DefinedHole, DefineHole, HoleArgument, HoleBuilder, HoleOptions, HoleSite } from './registry.js';
export { bytesMayHoldHoles, cutAtHoles, holdsHoles, livePlaceholder, sealedBody, sealHoleBytes, sealHoles, unsealedBody, unsealHoles } from './markers.js';
export type { HoleCall, HoleForm } from './markers.js';
export { buildHole, deliverRenderedHoles, fillHoles, outsideRequest, reportHoleFailure, RESPONSE_HOLES } from './fill.js';
export type { HoleDeliverer, HoleMode, HoleReport, ResponseHoles } from './fill.js';
export { esiIncludes, HOLE_PATH, HoleSigner, readHoleUrl } from './esi.js';
export { HolePlan, holePlanOf } from './plan.js';

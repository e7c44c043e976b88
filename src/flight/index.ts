/** One engine for work in flight at every level: single-flight, cross-process locks, refresh-behind. */
export { Flight, type FlightLevel, Flights, type FlightState } from './flight.js';
export { LOCK_POLL_MS, LOCK_SECONDS, lockOrWait, pollUntil, type LockOutcome, type Locks, type Release } from './lock.js';
export { Refreshes, type Stale } from './refresh-behind.js';
export { WorkBehind } from './work-behind.js';

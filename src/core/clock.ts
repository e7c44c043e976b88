/**
 * The clock expiry is checked against, in epoch seconds. Reading the system clock costs about as
 * much as a whole in-memory cache hit, so the reading is reused for up to a millisecond (or 1000
 * calls, whichever comes first), as lru-cache does. Nothing expires by a timer: the timer only
 * forgets the reading.
 */
let reading: number | undefined;
let uses = 0;

const forget = (): void => {
  reading = undefined;
};

export function now(): number {
  if (reading === undefined || ++uses > 1000) {
    reading = Date.now() / 1000;
    uses = 0;
    setTimeout(forget, 1).unref();
  }
  return reading;
}

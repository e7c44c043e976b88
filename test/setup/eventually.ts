/**
 * Retries `check` until it passes (or `timeoutMs` is over): for work that finishes behind the caller, a
 * background refresh. The deadline is generous: it only bounds how long a failing test takes to fail.
 */
export async function eventually(check: () => unknown, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** What `call` throws, or the promise it returns rejects with; an error of its own when neither happens. */
export async function errorOf(call: () => unknown): Promise<Error> {
  try {
    await call();
  } catch (error) {
    return error as Error;
  }
  throw new Error('nothing was thrown');
}

/** Waits `ms`: for work or a server's TTL to pass, never for another party (wait on its signal instead). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

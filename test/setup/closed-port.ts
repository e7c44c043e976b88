/**
 * A loopback port nothing listens on: connections to it are refused, as to a server that died. It is
 * taken below the kernel's ephemeral range, where every port a test run listens on comes from
 * (`listen(0)`), so another test run beside this one does not start a server on it.
 */
import { readFileSync } from 'node:fs';
import { portIsFree } from './process.js';

const LOWEST = 10_000;

export async function closedPort(): Promise<number> {
  const below = ephemeralPortsFrom();
  for (;;) {
    const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (await portIsFree(port)) return port;
  }
}

/** The first port of Linux's ephemeral range; its default elsewhere. */
function ephemeralPortsFrom(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
}

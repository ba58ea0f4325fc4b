/** Where this machine dials the listeners a master binds to HOST. */

/** A wildcard address is reached on loopback; any other HOST as it is. */
export function dialHost(host: string): string {
  const trimmed = host.trim().replace(/^\[|\]$/g, '');
  return trimmed === '0.0.0.0' || trimmed === '::' ? '127.0.0.1' : trimmed;
}

/** `host:port` for a URL or a gRPC target (an IPv6 address in brackets). */
export function hostPort(host: string, port: number): string {
  const dial = dialHost(host);
  return `${dial.includes(':') ? `[${dial}]` : dial}:${port}`;
}

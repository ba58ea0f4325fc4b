/**
 * deploy/stack.no-ipvs.yml, merged over stack.yml as Docker merges it: every
 * service resolves by DNS round robin, and the master's port is published on
 * its own node only, once (the override replaces the ingress port rather than
 * adding a second one). The Swarm test (npm run test:swarm) deploys with it
 * on a real engine; this checks the merge without one.
 */
import { describe, expect, it } from 'vitest';
import { stackConfig } from '../../unit/deploy/support/tools.ts';

describe('deploy/stack.no-ipvs.yml', () => {
  it('gives every service dnsrr and publishes the master in mode host', () => {
    const plain = stackConfig([], { HTTP_PORT: '18080' });
    const config = stackConfig(['deploy/stack.no-ipvs.yml'], { HTTP_PORT: '18080' });
    expect(Object.keys(config.services).sort()).toEqual(Object.keys(plain.services).sort());
    for (const [name, service] of Object.entries(config.services)) {
      expect(service.deploy?.endpoint_mode, name).toBe('dnsrr');
    }
    expect(config.services.master?.ports).toEqual([
      { mode: 'host', target: 8080, published: 18080, protocol: 'tcp' },
    ]);
    // stack.yml itself is unchanged: the routing mesh where IPVS exists.
    expect(plain.services.master?.ports).toEqual([
      { mode: 'ingress', target: 8080, published: 18080, protocol: 'tcp' },
    ]);
  });

  it('keeps the Swarm test override valid on top of it', () => {
    const config = stackConfig(['deploy/stack.no-ipvs.yml', 'tests/swarm/stack.test.yml'], {
      SWARM_DOCKER_SOCKET: '/run/test-engine.sock',
    });
    const volumes = config.services.autoscaler?.volumes as { source: string; target: string }[];
    expect(volumes).toEqual([
      expect.objectContaining({ source: '/run/test-engine.sock', target: '/var/run/docker.sock' }),
    ]);
  });
});

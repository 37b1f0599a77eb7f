import { describe, expect, it } from 'vitest';
import { type ClusterState, emptyState } from '../../../src/model/cluster-state.js';
import { Fields } from '../../../src/model/fields.js';
import { checkAddrPools, createNetwork, readNetworkSpec } from '../../../src/model/network.js';
import { initCluster } from '../../../src/model/node.js';
import type { AddrPools, Network } from '../../../src/model/types.js';
import { applyChange } from '../../helpers/state.js';

const now = '2026-01-01T00:00:00.000Z';

/** A cluster made with `pools` (swarm's default when absent), then `create` networks in order. */
function networks(pools: AddrPools | undefined, create: Record<string, unknown>[]): string[] {
  let s: ClusterState = emptyState();
  s = applyChange(s, initCluster(s, '10.0.0.0/24', now, undefined, pools));
  for (const body of create) s = applyChange(s, createNetwork(s, readNetworkSpec(Fields.of(body, '')), now));
  return [...s.networks.values()].filter((n: Network) => !n.ingress).map((n) => n.subnet);
}

describe('default address pools', () => {
  it('gives a network without --subnet the next free /24 of 10.0.0.0/8, past ingress, as swarm', () => {
    expect(networks(undefined, [{ name: 'a' }, { name: 'b' }])).toEqual(['10.0.1.0/24', '10.0.2.0/24']);
  });

  it('never overlaps a network made with a subnet of its own, however big', () => {
    const got = networks(undefined, [
      { name: 'a' },
      { name: 'big', subnet: '10.0.4.0/22' },
      { name: 'c' },
      { name: 'd' },
      { name: 'e' },
    ]);
    expect(got).toEqual(['10.0.1.0/24', '10.0.4.0/22', '10.0.2.0/24', '10.0.3.0/24', '10.0.8.0/24']);
  });

  it('takes the pools and mask length set at init, moving to the next pool when one is full', () => {
    const pools = { pools: ['192.168.8.0/23', '172.30.0.0/16'], maskLength: 24 };
    expect(networks(pools, [{ name: 'a' }, { name: 'b' }, { name: 'c' }])).toEqual([
      '192.168.8.0/24',
      '192.168.9.0/24',
      '172.30.0.0/24',
    ]);
  });

  it("says so in Docker's words when every pool is used up", () => {
    const pools = { pools: ['192.168.8.0/24'], maskLength: 24 };
    expect(() => networks(pools, [{ name: 'a' }, { name: 'b' }])).toThrow(
      'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
    );
  });

  it('refuses a mask length that does not fit a pool', () => {
    expect(() => checkAddrPools(['10.0.0.0/16'], 8)).toThrow('mask length 8 does not fit pool 10.0.0.0/16');
    expect(() => checkAddrPools(['10.0.0.0/8'], 31)).toThrow(/does not fit/);
    expect(() => checkAddrPools([], 24)).toThrow('at least one address pool is needed');
  });
});

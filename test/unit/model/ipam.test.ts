import { describe, expect, it } from 'vitest';
import { allocate, checkRequested, defaultGateway, makePool } from '../../../src/model/ipam.js';

describe('ipam', () => {
  it('never hands out the network, broadcast or gateway address', () => {
    const pool = makePool('10.1.0.0/30', '10.1.0.1');
    const used = new Set<string>();
    const got = allocate(pool, used, 'n');
    expect(got).toBe('10.1.0.2');
    used.add(got);
    expect(() => allocate(pool, used, 'n')).toThrow('no available IP addresses in network n (10.1.0.0/30)');
  });

  it('allocates sequentially and reuses released addresses', () => {
    const pool = makePool('10.2.0.0/24', defaultGateway('10.2.0.0/24'));
    const used = new Set<string>();
    for (let i = 0; i < 253; i++) used.add(allocate(pool, used, 'n'));
    expect(used.has('10.2.0.254')).toBe(true);
    expect(used.has('10.2.0.1')).toBe(false);
    expect(used.has('10.2.0.255')).toBe(false);
    expect(() => allocate(pool, used, 'n')).toThrow(/no available IP addresses/);
    used.delete('10.2.0.77');
    expect(allocate(pool, used, 'n')).toBe('10.2.0.77');
  });

  it('refuses requested addresses outside the subnet, reserved or taken', () => {
    const pool = makePool('10.3.0.0/24', '10.3.0.1');
    const used = new Set(['10.3.0.9']);
    expect(checkRequested(pool, '10.3.0.10', used, 'n')).toBe('10.3.0.10');
    expect(() => checkRequested(pool, '10.4.0.10', used, 'n')).toThrow(
      'address 10.4.0.10 is not in subnet 10.3.0.0/24 of network n',
    );
    expect(() => checkRequested(pool, '10.3.0.1', used, 'n')).toThrow('reserved');
    expect(() => checkRequested(pool, '10.3.0.255', used, 'n')).toThrow('reserved');
    expect(() => checkRequested(pool, '10.3.0.9', used, 'n')).toThrow(
      'address 10.3.0.9 is already in use in network n',
    );
  });

  it('handles IPv6 subnets', () => {
    const pool = makePool('fd00:1::/125', defaultGateway('fd00:1::/125'));
    expect(pool.gateway).toBe('fd00:1::1');
    const used = new Set<string>();
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      const a = allocate(pool, used, 'v6');
      used.add(a);
      got.push(a);
    }
    expect(got).toEqual(['fd00:1::2', 'fd00:1::3', 'fd00:1::4', 'fd00:1::5', 'fd00:1::6', 'fd00:1::7']);
    expect(() => allocate(pool, used, 'v6')).toThrow(/no available/);
    expect(checkRequested(pool, 'FD00:1:0::3', new Set(), 'v6')).toBe('fd00:1::3');
  });

  it('allocates from a sub-range when one is given', () => {
    const pool = makePool('10.5.0.0/16', '10.5.0.1', '10.5.255.0/24');
    expect(allocate(pool, new Set(), 'n')).toBe('10.5.255.0'); // a host address in a /16
    expect(() => makePool('10.5.0.0/16', '10.5.0.1', '10.6.0.0/24')).toThrow(
      'subnet 10.5.0.0/16 does not contain range 10.6.0.0/24',
    );
  });
});

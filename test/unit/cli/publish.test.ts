import { describe, expect, it } from 'vitest';
import { parseNetworkAttachment, parsePublish } from '../../../src/cli/publish.js';

describe('--publish, as the docker CLI reads it', () => {
  it.each([
    ['8080:80', { published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' }],
    ['80/udp', { published: 0, target: 80, protocol: 'udp', mode: 'ingress' }],
    ['published=8080,target=80', { published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' }],
    // Keys and values in any case, as the docker CLI lowercases them.
    [
      'Published=53,Target=53,Protocol=UDP,Mode=Host',
      { published: 53, target: 53, protocol: 'udp', mode: 'host' },
    ],
  ])('%s', (text, want) => {
    expect(parsePublish(text)).toEqual([want]);
  });

  it('publishes on one address: IP:PUBLISHED:TARGET, IP::TARGET, [IPv6]:P:T and host_ip=', () => {
    expect(parsePublish('192.0.2.10:8080:80')).toEqual([
      { published: 8080, target: 80, protocol: 'tcp', mode: 'ingress', hostIp: '192.0.2.10' },
    ]);
    expect(parsePublish('192.0.2.10::80/udp')[0]).toMatchObject({
      published: 0,
      target: 80,
      hostIp: '192.0.2.10',
    });
    expect(parsePublish('[2001:db8::1]:8080:80')[0]).toMatchObject({
      published: 8080,
      hostIp: '2001:db8::1',
    });
    expect(parsePublish('published=8080,target=80,host_ip=192.0.2.10')[0]).toMatchObject({
      hostIp: '192.0.2.10',
    });
    expect(() => parsePublish('192.0.2.10:8080')).toThrow('invalid publish format');
  });

  it('expands ranges pairwise, as the docker CLI does', () => {
    expect(parsePublish('8000-8002:80-82/udp')).toEqual([
      { published: 8000, target: 80, protocol: 'udp', mode: 'ingress' },
      { published: 8001, target: 81, protocol: 'udp', mode: 'ingress' },
      { published: 8002, target: 82, protocol: 'udp', mode: 'ingress' },
    ]);
    expect(parsePublish('80-81').map((p) => `${p.published}:${p.target}`)).toEqual(['0:80', '0:81']);
    expect(() => parsePublish('8000-8005:80-90')).toThrow(
      'Invalid ranges specified for container and host Ports: 80-90 and 8000-8005',
    );
    expect(() => parsePublish('90-80')).toThrow('invalid target port range: 90-80');
  });

  it.each([
    ['published=8080,colour=red,target=80', 'invalid field key: colour'],
    ['published=8080', "missing mandatory field 'target'"],
    ['target=80,protocol=sctp', "invalid protocol value 'sctp'"],
    ['target=80,mode=local', "invalid publish mode value (local): must be either 'ingress' or 'host'"],
    ['target=80,published', 'invalid field published must be a key=value pair'],
  ])("refuses %s with Docker's words", (text, message) => {
    expect(() => parsePublish(text)).toThrow(message);
  });
});

describe('--network', () => {
  it('takes a name, aliases and a fixed VIP', () => {
    expect(parseNetworkAttachment('apps')).toEqual({ network: 'apps', aliases: [] });
    expect(parseNetworkAttachment('name=apps,alias=db,vip=10.11.0.9')).toEqual({
      network: 'apps',
      aliases: ['db'],
      vip: '10.11.0.9',
    });
    expect(() => parseNetworkAttachment('name=apps,colour=red')).toThrow(
      'invalid --network field: colour=red',
    );
  });
});

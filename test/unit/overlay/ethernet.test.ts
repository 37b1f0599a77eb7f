import { describe, expect, it } from 'vitest';
import {
  arpAnswer,
  arpQuestion,
  ndpAnswer,
  ndpQuestion,
  unicastDestination,
} from '../../../src/overlay/ethernet.js';

// An ARP request from 10.106.4.2 (02:42:0a:6a:04:02): who has 10.106.4.3?
const request = Buffer.from(
  'ffffffffffff02420a6a04020806' +
    '0001080006040001' +
    '02420a6a0402' +
    '0a6a0402' +
    '000000000000' +
    '0a6a0403',
  'hex',
);

describe('the encrypted overlay relay reads frames', () => {
  it('finds the question of an ARP request', () => {
    const q = arpQuestion(request);
    expect(q?.target).toBe('10.106.4.3');
    expect(q?.mac.toString('hex')).toBe('02420a6a0402');
    expect(q?.ip.toString('hex')).toBe('0a6a0402');
  });

  it('answers it as the endpoint would: to the asker, from and for the MAC made from the address', () => {
    const q = arpQuestion(request);
    if (!q) throw new Error('no question');
    const a = arpAnswer(q, q.target, '02:42:0a:6a:04:03');
    expect(a.toString('hex')).toBe(
      '02420a6a0402' +
        '02420a6a0403' +
        '0806' +
        '0001080006040002' +
        '02420a6a0403' +
        '0a6a0403' +
        '02420a6a0402' +
        '0a6a0402',
    );
    // A reply is not a question: the relay never answers its own answers.
    expect(arpQuestion(a)).toBeUndefined();
  });

  it('ignores what is not an IPv4 ARP request, and runts', () => {
    expect(arpQuestion(request.subarray(0, 30))).toBeUndefined();
    const ipv4 = Buffer.from(request);
    ipv4.writeUInt16BE(0x0800, 12);
    expect(arpQuestion(ipv4)).toBeUndefined();
  });

  it('routes unicast frames by destination MAC and leaves broadcast and multicast alone', () => {
    expect(unicastDestination(Buffer.from('02420a6a040302420a6a04020800', 'hex'))).toBe('02:42:0a:6a:04:03');
    expect(unicastDestination(request)).toBeUndefined();
    expect(unicastDestination(Buffer.from('333300000016aabbccddeeff86dd', 'hex'))).toBeUndefined();
    expect(unicastDestination(Buffer.from('02420a6a0403', 'hex'))).toBeUndefined();
  });

  it('answers an IPv6 neighbour solicitation with an advertisement the kernel accepts', () => {
    // fd00:5::3 (02:42:00:00:00:03) asks, on the solicited-node group, who has fd00:5::7.
    const ns = Buffer.from(
      '3333ff00000702420000000386dd' +
        '6000000000203aff' +
        'fd000005000000000000000000000003' +
        'ff0200000000000000000001ff000007' +
        '87000000' +
        '00000000' +
        'fd000005000000000000000000000007' +
        '0101024200000003',
      'hex',
    );
    const q = ndpQuestion(ns);
    expect(q?.target).toBe('fd00:5::7');
    if (!q) throw new Error('no question');
    const na = ndpAnswer(q, q.target, '02:42:00:00:00:07');
    // To the asker, from the target's MAC; IPv6 from the target to the asker, hop limit 255.
    expect(na.subarray(0, 14).toString('hex')).toBe('024200000003024200000007' + '86dd');
    expect(na[14 + 7]).toBe(255);
    expect(na.subarray(14 + 8, 14 + 24).toString('hex')).toBe('fd000005000000000000000000000007');
    expect(na.subarray(14 + 24, 14 + 40).toString('hex')).toBe('fd000005000000000000000000000003');
    const m = na.subarray(54);
    // Type 136, solicited and override, the target, and its MAC as option 2.
    expect(m[0]).toBe(136);
    expect(m.readUInt32BE(4)).toBe(0x6000_0000);
    expect(m.subarray(24).toString('hex')).toBe('0201024200000007');
    // The checksum over the pseudo-header and the message adds up to all ones.
    let sum = 0;
    const pseudo = Buffer.concat([na.subarray(22, 54), Buffer.from([0, 0, 0, m.length, 0, 0, 0, 58])]);
    for (const b of [pseudo, m])
      for (let i = 0; i < b.length; i += 2) sum += (b[i] as number) * 256 + (b[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
    // An advertisement is not a question.
    expect(ndpQuestion(na)).toBeUndefined();
  });
});

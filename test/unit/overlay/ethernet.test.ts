import { describe, expect, it } from 'vitest';
import { arpAnswer, arpQuestion, unicastDestination } from '../../../src/overlay/ethernet.js';

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
});

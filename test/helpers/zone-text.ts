import type { Answer as Rr } from 'dns-packet';

/** Formats records as zone-file lines (`web. 5 IN A 10.0.0.2`), sorted, for table tests. */
export function zoneText(records: readonly Rr[]): string[] {
  return records.map(line).sort();
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

function line(rr: Rr): string {
  const head = `${fqdn(rr.name)} ${'ttl' in rr ? rr.ttl : 0} IN ${rr.type}`;
  switch (rr.type) {
    case 'A':
    case 'AAAA':
      return `${head} ${rr.data}`;
    case 'PTR':
      return `${head} ${fqdn(rr.data)}`;
    case 'SRV':
      return `${head} ${rr.data.priority} ${rr.data.weight} ${rr.data.port} ${fqdn(rr.data.target)}`;
    case 'SOA':
      return `${head} ${fqdn(rr.data.mname)} ${fqdn(rr.data.rname)} ${rr.data.serial} ${rr.data.refresh} ${rr.data.retry} ${rr.data.expire} ${rr.data.minimum}`;
    default:
      return `${head} ?`;
  }
}

import { UsageError } from './args.js';

/** One `--publish` value as the API takes it. */
export interface PublishArg {
  published: number;
  target: number;
  protocol: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
  traffic?: 'cluster' | 'local';
  hostIp?: string;
}

function port(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!text || !Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`invalid ${what} port: ${text ?? ''}`);
  return n;
}

/**
 * Parses docker's two `--publish` forms: the long `published=8080,target=80,protocol=udp,mode=host`
 * and the short `8080:80[/udp]` (or just `80` for an auto-assigned published port), with ranges
 * (`8000-8010:80-90`) expanded to one port each.
 */
export function parsePublish(text: string): PublishArg[] {
  if (text.includes('=')) {
    // The docker CLI's long syntax and its error texts; keys and values in any case.
    const out: PublishArg = { published: 0, target: 0, protocol: 'tcp', mode: 'ingress' };
    let hasTarget = false;
    for (const part of text.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) throw new UsageError(`invalid field ${part} must be a key=value pair`);
      const k = part.slice(0, eq).trim().toLowerCase();
      const v = part.slice(eq + 1).trim();
      switch (k) {
        case 'published':
          out.published = port(v, 'published');
          break;
        case 'target':
          out.target = port(v, 'target');
          hasTarget = true;
          break;
        case 'protocol': {
          const p = v.toLowerCase();
          if (p !== 'tcp' && p !== 'udp') throw new UsageError(`invalid protocol value '${v}'`);
          out.protocol = p;
          break;
        }
        case 'mode': {
          const m = v.toLowerCase();
          if (m !== 'ingress' && m !== 'host')
            throw new UsageError(`invalid publish mode value (${v}): must be either 'ingress' or 'host'`);
          out.mode = m;
          break;
        }
        case 'host_ip':
          out.hostIp = v;
          break;
        case 'traffic': {
          const t = v.toLowerCase();
          if (t !== 'cluster' && t !== 'local')
            throw new UsageError(`invalid traffic value (${v}): must be either 'cluster' or 'local'`);
          out.traffic = t;
          break;
        }
        default:
          throw new UsageError(`invalid field key: ${k}`);
      }
    }
    if (!hasTarget) throw new UsageError(`missing mandatory field 'target'`);
    return [out];
  }
  // `IP:PUBLISHED:TARGET` (an IPv6 address in brackets): published on that address only.
  const ip = /^(\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):(.+)$/.exec(text);
  if (ip) {
    const tail = ip[2] as string;
    if (!tail.includes(':'))
      throw new UsageError(`invalid publish format: ${text} (use IP:PUBLISHED:TARGET or IP::TARGET)`);
    const rest = parsePublish(tail.startsWith(':') ? tail.slice(1) : tail);
    const hostIp = (ip[1] as string).replace(/^\[|\]$/g, '');
    return rest.map((p) => ({ ...p, hostIp }));
  }
  const m = /^(?:(\d+(?:-\d+)?):)?(\d+(?:-\d+)?)(?:\/(tcp|udp))?$/.exec(text);
  if (!m)
    throw new UsageError(
      `invalid publish format: ${text} (use PUBLISHED:TARGET[/udp] or published=P,target=T)`,
    );
  const protocol = (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp';
  const targets = range(m[2] as string, 'target');
  const published = m[1] ? range(m[1], 'published') : undefined;
  // Ranges, as the docker CLI expands them: one port per number, pairwise.
  if (published && published.length !== targets.length)
    throw new UsageError(`Invalid ranges specified for container and host Ports: ${m[2]} and ${m[1]}`);
  return targets.map((target, i) => ({ published: published?.[i] ?? 0, target, protocol, mode: 'ingress' }));
}

/** `8000` or `8000-8010`: the ports of a range, at most 1,000 of them. */
function range(text: string, what: string): number[] {
  const [a, b] = text.split('-');
  const first = port(a, what);
  const last = b === undefined ? first : port(b, what);
  if (last < first || last - first >= 1000) throw new UsageError(`invalid ${what} port range: ${text}`);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** Parses `--network NET` or `--network name=NET,alias=A,alias=B[,vip=IP]`. */
export function parseNetworkAttachment(text: string): { network: string; aliases: string[]; vip?: string } {
  if (!text.includes('=')) return { network: text, aliases: [] };
  let network = '';
  let vip: string | undefined;
  const aliases: string[] = [];
  for (const part of text.split(',')) {
    const [k, v] = part.split('=', 2) as [string, string | undefined];
    if ((k === 'name' || k === 'target') && v) network = v;
    else if (k === 'alias' && v) aliases.push(v);
    else if (k === 'vip' && v) vip = v;
    else throw new UsageError(`invalid --network field: ${part}`);
  }
  if (!network) throw new UsageError(`--network ${text}: name= is required`);
  return { network, aliases, ...(vip ? { vip } : {}) };
}

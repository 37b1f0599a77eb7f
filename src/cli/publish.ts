import { UsageError } from './args.js';

/** One `--publish` value as the API takes it. */
export interface PublishArg {
  published: number;
  target: number;
  protocol: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
  traffic?: 'cluster' | 'local';
}

function port(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!text || !Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`invalid ${what} port: ${text ?? ''}`);
  return n;
}

/**
 * Parses docker's two `--publish` forms: the long `published=8080,target=80,protocol=udp,mode=host`
 * and the short `8080:80[/udp]` (or just `80` for an auto-assigned published port).
 */
export function parsePublish(text: string): PublishArg {
  if (text.includes('=')) {
    const out: PublishArg = { published: 0, target: 0, protocol: 'tcp', mode: 'ingress' };
    for (const part of text.split(',')) {
      const [k, v] = part.split('=', 2) as [string, string | undefined];
      switch (k) {
        case 'published':
          out.published = port(v, 'published');
          break;
        case 'target':
          out.target = port(v, 'target');
          break;
        case 'protocol':
          if (v !== 'tcp' && v !== 'udp') throw new UsageError(`invalid protocol: ${v ?? ''} (tcp or udp)`);
          out.protocol = v;
          break;
        case 'mode':
          if (v !== 'ingress' && v !== 'host')
            throw new UsageError(`invalid publish mode: ${v ?? ''} (ingress or host)`);
          out.mode = v;
          break;
        case 'traffic':
          if (v !== 'cluster' && v !== 'local')
            throw new UsageError(`invalid publish traffic: ${v ?? ''} (cluster or local)`);
          out.traffic = v;
          break;
        default:
          throw new UsageError(`invalid field '${k}' must be a key=value pair`);
      }
    }
    if (out.target === 0) throw new UsageError(`missing mandatory field "target" in --publish ${text}`);
    return out;
  }
  const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(text);
  if (!m)
    throw new UsageError(
      `invalid publish format: ${text} (use PUBLISHED:TARGET[/udp] or published=P,target=T)`,
    );
  return {
    published: m[1] ? port(m[1], 'published') : 0,
    target: port(m[2], 'target'),
    protocol: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp',
    mode: 'ingress',
  };
}

/** Parses `--network NET` or `--network name=NET,alias=A,alias=B`. */
export function parseNetworkAttachment(text: string): { network: string; aliases: string[] } {
  if (!text.includes('=')) return { network: text, aliases: [] };
  let network = '';
  const aliases: string[] = [];
  for (const part of text.split(',')) {
    const [k, v] = part.split('=', 2) as [string, string | undefined];
    if ((k === 'name' || k === 'target') && v) network = v;
    else if (k === 'alias' && v) aliases.push(v);
    else throw new UsageError(`invalid --network field: ${part}`);
  }
  if (!network) throw new UsageError(`--network ${text}: name= is required`);
  return { network, aliases };
}

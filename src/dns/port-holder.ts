import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The socket inodes bound to `port` in /proc/net/{udp,udp6,tcp,tcp6}. */
function inodesOn(port: number): Set<string> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out = new Set<string>();
  for (const table of ['udp', 'udp6', 'tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hex}`) && f[9]) out.add(f[9]);
    }
  }
  return out;
}

/**
 * Which process holds `port` (aardvark-dns on a Podman bridge, systemd-resolved, dnsmasq...), so a
 * bind error can name it. Best effort: undefined when /proc does not tell (another namespace, no
 * permission).
 */
export function portHolder(port: number): string | undefined {
  const inodes = inodesOn(port);
  if (inodes.size === 0) return undefined;
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1] as string)) {
          const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
          return `${name} (pid ${pid})`;
        }
      } catch {
        // The descriptor closed meanwhile.
      }
    }
  }
  return undefined;
}

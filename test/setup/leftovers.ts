import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Live child processes of `pid` (zombies are already gone for our purposes). */
export function childrenOf(pid: number): { pid: number; command: string }[] {
  const out: { pid: number; command: string }[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== pid || rest[0] === 'Z') continue;
      out.push({
        pid: Number(p),
        command: readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').trim(),
      });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** What tests could leave on the host: namespaces, addresses on lo, meshd's nft tables. */
export function hostState(): { netns: string[]; lo: string[]; nft: string[] } {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  return {
    netns: run('ip', ['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0] as string)
      .filter(Boolean)
      .sort(),
    lo: [...run('ip', ['-o', 'addr', 'show', 'dev', 'lo']).matchAll(/inet6? (\S+)/g)]
      .map((m) => m[1] as string)
      .sort(),
    nft: run('nft', ['list', 'tables'])
      .split('\n')
      .filter((l) => /meshd/i.test(l))
      .sort(),
  };
}

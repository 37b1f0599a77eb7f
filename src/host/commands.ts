import { execFile, spawn } from 'node:child_process';

/** Output of a command cut to what an error message needs. */
export const brief = (s: string) => s.trim().split('\n').slice(0, 6).join('\n').slice(0, 800);

/** Runs `nft -f -` with a script on standard input: one transaction, all or nothing. */
export function runNft(script: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 64_000) stderr += d.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`nft failed (exit ${code}): ${brief(stderr)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(script);
  });
}

/** Runs a command: its exit code and output, never a throw. */
export function run(
  cmd: string,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: String(out), err: error && !err ? error.message : String(err) });
    });
  });
}

/**
 * Why this process cannot program nftables, or undefined when it can: `nft` must exist and a
 * netlink read must be allowed (it needs CAP_NET_ADMIN, as every write does).
 */
export async function kernelUnavailable(): Promise<string | undefined> {
  const r = await run('nft', ['list', 'tables']);
  if (r.code === 0) return undefined;
  if (/ENOENT|not found/i.test(r.err)) return 'nft is not installed (Debian: apt-get install nftables)';
  if (/not permitted|EPERM|EACCES/i.test(r.err)) return 'no CAP_NET_ADMIN (run as root, or add NET_ADMIN)';
  return `nft does not work here: ${brief(r.err)}`;
}

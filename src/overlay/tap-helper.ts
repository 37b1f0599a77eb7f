import { type ChildProcess, spawn } from 'node:child_process';
import { run } from '../host/commands.js';

/**
 * The helper that holds an encrypted network's TAP device for meshd. Node has no ioctl, and a TAP
 * device is opened with one (TUNSETIFF); Perl has it and is on every Debian system (perl-base is
 * essential), so a few lines of it open the device and move frames between it and meshd over
 * the helper's stdin and stdout, each frame as `length(4, big-endian) vnet-header frame`, as
 * many as are ready per write. With the virtio-net header and offloads on, the kernel hands over
 * a TCP flow's data as frames of up to 64 KB (segmentation offload) and takes them back so. It exits when its stdin closes, so it never outlives meshd, even after a
 * SIGKILL, and the TAP device goes with it.
 */
const script = String.raw`
use strict;
my $name = $ARGV[0];
open(my $tap, '+<', '/dev/net/tun') or die "open /dev/net/tun: $!\n";
# TUNSETIFF with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR: Ethernet frames behind a virtio-net header.
ioctl($tap, 0x400454ca, pack('Z16 s x22', $name, 0x5002)) or die "TUNSETIFF $name: $!\n";
# TUNSETOFFLOAD: checksum and TSO4/TSO6, so a TCP flow crosses as 64 KB frames, not 1,450-byte ones.
ioctl($tap, 0x400454d0, 7) or die "TUNSETOFFLOAD $name: $!\n";
binmode $tap; binmode STDIN; binmode STDOUT;
my $tfd = fileno($tap);
my $in = '';
my $rin = '';
vec($rin, $tfd, 1) = 1;
vec($rin, 0, 1) = 1;
while (1) {
  my $r = $rin;
  next if select($r, undef, undef, undef) <= 0;
  if (vec($r, $tfd, 1)) {
    # Every frame ready now (up to 64) in one write: fewer wake-ups for meshd.
    my $out = '';
    for (1 .. 64) {
      my $n = sysread($tap, my $f, 70000);
      last unless $n;
      $out .= pack('N', $n) . $f;
      my $t = '';
      vec($t, $tfd, 1) = 1;
      last unless select($t, undef, undef, 0) > 0;
    }
    while (length $out) {
      my $w = syswrite(STDOUT, $out);
      exit 0 unless defined $w;
      substr($out, 0, $w, '');
    }
  }
  if (vec($r, 0, 1)) {
    my $n = sysread(STDIN, $in, 1048576, length $in);
    exit 0 unless $n;
    while (length($in) >= 4) {
      my $len = unpack('N', $in);
      last if length($in) < 4 + $len;
      syswrite($tap, substr($in, 4, $len));
      substr($in, 0, 4 + $len, '');
    }
  }
}
`;

/** Whether this host can run the helper (`perl` there). */
export async function tapHelperAvailable(): Promise<boolean> {
  return (await run('perl', ['-e', '1'])).code === 0;
}

/** The virtio-net header in front of every frame to and from the helper (flags, GSO, checksum). */
export const vnetHeader = 10;
/** The largest frame the helper hands over: the header, Ethernet's and a 64 KB IP packet. */
export const maxTapFrame = vnetHeader + 14 + 65_535 + 4;

/** Starts the helper holding TAP device `name`: frames flow on its stdin and stdout. */
export function startTapHelper(name: string): ChildProcess {
  return spawn('perl', ['-e', script, name], { stdio: ['pipe', 'pipe', 'pipe'] });
}

#!/bin/sh
# Installs the real peers and clients the tests run against (Debian packages), once.
# Idempotent: does nothing when every tool is already there. Needs root to install;
# without root it names exactly what to install and fails.
set -eu
need=""
check() { command -v "$1" >/dev/null 2>&1 || need="$need $2"; }
check dig bind9-dnsutils
check etcd etcd-server
check dnsmasq dnsmasq-base
check unbound unbound
check haproxy haproxy
check nginx nginx
check wrk wrk
check dnsperf dnsperf
check socat socat
check tcpdump tcpdump
check nft nftables
check conntrack conntrack
check iperf3 iperf3
check curl curl
check ping iputils-ping
check ip iproute2
check prometheus prometheus
check promtool prometheus
check getent libc-bin
check podman podman
check runc runc
check chromium chromium
check docker docker.io
dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need="$need libnginx-mod-stream"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "meshd tests need these Debian packages; install them as root:" >&2
  echo "  apt-get install -y$need" >&2
  exit 1
fi
echo "installing test tools:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null

#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks use, when missing (needs root; prints what to do otherwise).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have prometheus || need+=(prometheus)
have promtool || need+=(prometheus)
have prometheus-alertmanager || need+=(prometheus-alertmanager)
have prometheus-blackbox-exporter || need+=(prometheus-blackbox-exporter)
have fping || need+=(fping)
have chromium || need+=(chromium)
have nft || need+=(nftables)
have ip || need+=(iproute2)
# The port probes' tests: a real MariaDB (started privately when none answers on 3306) and redis-server.
have mariadbd || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
have redis-server || need+=(redis-server)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-core)  # the mail probe tests run it as their own process
[ -e /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -e /usr/lib/dovecot/pop3 ] || need+=(dovecot-pop3d)
have snmpd || need+=(snmpd)  # the SNMP probe tests run the real agent
have prometheus-snmp-exporter || need+=(prometheus-snmp-exporter)  # bench/snmp_vs_exporter.py
[ -e /usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf ] || need+=(fonts-noto-core)  # the PDF reports
[ -e /usr/share/fonts/truetype/farsiweb ] || [ -e /usr/share/fonts/truetype/fonts-farsiweb ] || need+=(fonts-farsiweb)
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null

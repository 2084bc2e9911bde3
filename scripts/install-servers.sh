#!/usr/bin/env bash
# Installs the real servers, fault tools and the headless browser (chromium, for the status page test) the end-to-end tests need (Debian/Ubuntu, as root).
# Idempotent: when everything is present it touches nothing and needs no network.
# To add a server, add its package name to PACKAGES.
set -euo pipefail

PACKAGES=(postgresql iptables iproute2 dovecot-imapd wrk activemq rabbitmq-server openssl redis-server redis-tools nats-server mosquitto prometheus chromium fonts-liberation)
# Packages whose Debian service the tests never use: the kit starts private servers on free ports, so a
# system-wide one (redis on 6379, mosquitto on 1883, prometheus on 9090: the tests use only its promtool)
# only costs memory and a port. Stopped and disabled when this script installed them; a service the
# machine already ran is left alone.
UNUSED_SERVICES=(redis-server nats-server mosquitto prometheus)

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-servers: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  for service in "${UNUSED_SERVICES[@]}"; do
    [[ " ${missing[*]} " == *" $service "* ]] || continue
    # Debian's policy-rc.d (containers) keeps apt from starting it; with systemd or sysvinit it runs now.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      "${sudo_cmd[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$service" ]; then
      "${sudo_cmd[@]}" "/etc/init.d/$service" stop >/dev/null 2>&1 || true
      "${sudo_cmd[@]}" update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
  done
else
  echo "install-servers: all present (${PACKAGES[*]})"
fi

# The tests start PostgreSQL themselves from the versioned bin dir; show which one they will find.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "install-servers: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
echo "install-servers: PostgreSQL binaries at $pg_bin"

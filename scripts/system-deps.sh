#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing (root on Debian; skipped elsewhere):
# util-linux (unshare: the local backend's jobs), chromium + chromium-driver (the browser check), postgresql and
# redis-server (`make up DB=postgres EXECUTOR=celery` and the scale-out tests start their own server processes
# from these binaries; the packages' system services are not used).
set -euo pipefail
need=()
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${need[*]} (install them with your package manager)" >&2
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# policy-rc.d 101: the packages' own services (the system PostgreSQL cluster, redis-server.service) are not started.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

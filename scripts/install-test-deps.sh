#!/usr/bin/env bash
# Install the real components the tests start themselves, from Debian's packages,
# only when they are missing: PostgreSQL, Prometheus, Alertmanager and Chromium.
set -euo pipefail

missing=()
have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_postgres || missing+=(postgresql postgresql-contrib)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [ ${#missing[@]} -eq 0 ]; then
    echo "test dependencies: all present"
    exit 0
fi

# De-duplicate while keeping order.
packages=$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
echo "test dependencies: installing ${packages}"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${packages}" >&2; exit 1; }
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# shellcheck disable=SC2086
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends ${packages} >/dev/null
# Debian starts packaged daemons on install; the tests start their own, on their own ports.
for service in postgresql prometheus prometheus-alertmanager; do
    "${sudo_cmd[@]}" systemctl stop "$service" >/dev/null 2>&1 || true
    "${sudo_cmd[@]}" service "$service" stop >/dev/null 2>&1 || true
done
echo "test dependencies: installed"

#!/usr/bin/env bash
# Install the real components the tests start themselves, from Debian's packages,
# only when they are missing: PostgreSQL, Prometheus, Alertmanager and Chromium; then the
# OpenID Connect provider the OIDC tests run (npm's `oidc-provider`, see the end).
set -euo pipefail

missing=()
have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_postgres || missing+=(postgresql postgresql-contrib)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # the HTTP load generator of `make bench`
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

# The OIDC tests' provider: panva's `oidc-provider`, pinned by tests/support/oidc_provider's
# package.json and package-lock.json, installed with `npm ci` into a cache folder outside the
# work tree (tests/support/oidc.py looks in the same place). Reinstalled when the lock changes.
install_oidc_provider() {
    local source_dir cache_dir
    source_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/support/oidc_provider"
    cache_dir="${RS_OIDC_PROVIDER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reliability-studio/oidc-provider}"
    if [ -f "$cache_dir/node_modules/oidc-provider/package.json" ] \
        && cmp -s "$source_dir/package-lock.json" "$cache_dir/package-lock.json"; then
        echo "test dependencies: oidc-provider present in $cache_dir"
        return 0
    fi
    echo "test dependencies: installing oidc-provider into $cache_dir"
    rm -rf "$cache_dir"
    mkdir -p "$cache_dir"
    cp "$source_dir/package.json" "$source_dir/package-lock.json" "$cache_dir/"
    (cd "$cache_dir" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
}

if [ ${#missing[@]} -eq 0 ]; then
    echo "test dependencies: all present"
    install_oidc_provider
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
install_oidc_provider

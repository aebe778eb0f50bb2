#!/usr/bin/env bash
# Runs the benchmark: tessera under RADIUS load, side by side with FreeRADIUS on this machine,
# and the same logins over tessera's HTTP API (/validate/check).
#
#   bench/run.sh [tessera-bench options]      e.g. --seconds 20 --concurrency 256
#
# Installs FreeRADIUS when it is missing (without starting its system service, which would take
# port 1812), builds the release binaries, runs every scenario, prints the table and writes
# target/bench.csv. Everything stays on loopback; every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "bench/run.sh: need root (or sudo) to install: $*" >&2; return 1; fi
}

scripts/install-freeradius.sh

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "==> installing postgresql (for the -pg scenarios; its service is not started)"
    as_root apt-get update -qq
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql >/dev/null || true
    as_root rm -f /usr/sbin/policy-rc.d
fi

echo "==> building release binaries"
cargo build --release --locked -p tessera -p tessera-bench
echo "==> machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/tessera-bench" --tessera "$target/release/tessera" --csv "$target/bench.csv" "$@"

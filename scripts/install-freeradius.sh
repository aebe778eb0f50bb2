#!/usr/bin/env bash
# Installs Debian's freeradius when it is missing, without starting its system service (which
# would take port 1812): the benchmark's reference server and the tests' legacy server for
# passthru both start their own on a free port. Used by scripts/test.sh and bench/run.sh.
set -euo pipefail

[ -x /usr/sbin/freeradius ] || [ -x /usr/sbin/radiusd ] && exit 0

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "tessera: need root (or sudo) to install: $*" >&2; return 1; fi
}

echo "==> installing freeradius (its service is not started)"
as_root apt-get update -qq
# policy-rc.d answering 101 means "do not start services" for the duration of this install;
# one that was there before is left as it was.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    made_policy=1
fi
status=0
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 freeradius >/dev/null || status=$?
if [ "$made_policy" = 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
exit "$status"

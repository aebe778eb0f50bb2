#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs the test peers it needs when they are missing:
#   Debian: freeradius-utils (radclient), radsecproxy (the RadSec peer), slapd + ldap-utils
#           (LDAP tests), socat, openssl (test CAs for TLS tests), python3 (HTTP gateway and
#           SMTP server peers), pamtester + libpam-radius-auth (a real PAM client answering
#           challenges), freeradius (the legacy server of passthru; its service is not started),
#           postgresql (the tests of several nodes start their own cluster with initdb + pg_ctl),
#           chromium + chromium-driver (the helpdesk page's tests drive a headless Chromium
#           through chromedriver), hostapd + wpasupplicant + iproute2 (a real wired 802.1X NAS
#           and its supplicant on a veth pair in a network namespace: accounting and
#           Disconnect-Request, tests/e2e/nas.rs), eapoltest (wpa_supplicant's eapol_test,
#           the EAP tests' supplicant)
#   Python: aiosmtpd (SMTP tests), python-pskc and yubiotp (hardware token imports and YubiKey
#           OTPs), requests and privacyideaadm 3.0's source (privacyIDEA's own
#           privacyidea-validate client for the HTTP API tests; its pip install fails, so the
#           test unpacks the sdist and runs the script)
# Then, for the whole workspace: formatting, lints, unit tests and end-to-end tests against the
# real peers.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "tessera tests: need root (or sudo) to install: $*" >&2; return 1; fi
}

missing=()
command -v radclient >/dev/null || missing+=(freeradius-utils)
command -v radsecproxy >/dev/null || [ -x /usr/sbin/radsecproxy ] || missing+=(radsecproxy)
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapsearch >/dev/null || missing+=(ldap-utils)
command -v socat >/dev/null || missing+=(socat)
command -v openssl >/dev/null || missing+=(openssl)   # the TLS tests make their own CA
command -v prlimit >/dev/null || missing+=(util-linux)  # the exhaustion tests lower tessera's descriptor limit
command -v python3 >/dev/null || missing+=(python3 python3-pip)
command -v pamtester >/dev/null || missing+=(pamtester)
command -v chromium >/dev/null || missing+=(chromium)   # the page's browser tests (tests/e2e/browser)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v hostapd >/dev/null || [ -x /usr/sbin/hostapd ] || missing+=(hostapd)   # tests/e2e/nas.rs
command -v wpa_supplicant >/dev/null || [ -x /usr/sbin/wpa_supplicant ] || missing+=(wpasupplicant)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || missing+=(iproute2)
command -v eapol_test >/dev/null || missing+=(eapoltest)   # the EAP tests' supplicant (tests/e2e/eap.rs)
dpkg -s libpam-radius-auth >/dev/null 2>&1 || missing+=(libpam-radius-auth)
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/VERSION/bin, off PATH.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    # Another apt may hold the lock for a while on a fresh machine: wait for it.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
fi
# FreeRADIUS as the legacy server of the passthru tests (its own service is never started).
scripts/install-freeradius.sh
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    say "installing aiosmtpd"
    python3 -m pip install -q aiosmtpd || python3 -m pip install -q --break-system-packages aiosmtpd
fi
# tests/e2e/hwtok.rs: PSKC files made by python-pskc (import name pskc), YubiKey OTPs by yubiotp.
if ! python3 -c 'import pskc, yubiotp' 2>/dev/null; then
    say "installing python-pskc and yubiotp"
    python3 -m pip install -q python-pskc yubiotp || python3 -m pip install -q --break-system-packages python-pskc yubiotp
fi
if ! python3 -c 'import requests' 2>/dev/null; then
    say "installing requests"
    python3 -m pip install -q requests || python3 -m pip install -q --break-system-packages requests
fi
# tests/e2e/http.rs reads it here (or where TESSERA_PRIVACYIDEAADM says).
if [ ! -f /tmp/pidl/privacyideaadm-3.0.tar.gz ]; then
    say "downloading privacyideaadm 3.0's source"
    python3 -m pip download -q --no-deps --no-binary :all: -d /tmp/pidl privacyideaadm==3.0
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (the workspace: tessera, bench, testkit)"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo doc (broken links in doc comments are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
say "cargo test (the workspace)"
cargo test --workspace --all-targets --locked

#!/usr/bin/env bash
# Builds the tessera Debian package with dpkg-deb.
#
#   packaging/build-deb.sh [--binary PATH] [--out DIR]
#
# Without --binary it builds the release binary first (cargo build --release). The package
# installs the binary to /usr/bin, the systemd unit, the dictionaries to
# /usr/share/tessera/dictionaries, the README and docs/ to /usr/share/doc/tessera, and the configuration
# to /etc/tessera as conffiles (mode 0640, group tessera after installation).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
binary=""
out="$top/target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "build-deb.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    (cd "$top" && cargo build --release --locked)
    binary="$top/target/release/tessera"
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -1)"
arch="$(dpkg --print-architecture)"
root="$(mktemp -d)"
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$binary" "$root/usr/bin/tessera"
install -D -m 0644 "$here/tessera.service" "$root/lib/systemd/system/tessera.service"
install -D -m 0640 "$here/tessera.toml" "$root/etc/tessera/tessera.toml"
install -D -m 0640 "$here/users.toml" "$root/etc/tessera/users.toml"
chmod 0750 "$root/etc/tessera"
install -D -m 0644 "$top/README.md" "$root/usr/share/doc/tessera/README.md"
# The reference pages, where the README's links (docs/src/…) expect them.
for page in "$top"/docs/src/*.md; do
    install -D -m 0644 "$page" "$root/usr/share/doc/tessera/docs/src/$(basename "$page")"
done
if [ -d "$top/dictionaries" ]; then
    mkdir -p "$root/usr/share/tessera"
    cp -r "$top/dictionaries" "$root/usr/share/tessera/dictionaries"
    find "$root/usr/share/tessera" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
fi
mkdir -p "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" "$here/debian/control" > "$root/DEBIAN/control"
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$here/debian/$script" "$root/DEBIAN/$script"
done

mkdir -p "$out"
package="$out/tessera_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$package" >/dev/null
echo "$package"

#!/bin/sh
# The README's two commands on a fresh Debian machine, as root or as a user with sudo:
#   ./setup.sh demo    Debian packages it needs, the virtualenv, then the parser on the shipped samples
#   ./setup.sh check   Debian packages the suite needs (real InfluxDB 1.x, VictoriaMetrics...), then the whole suite
set -eu
cd "$(dirname "$0")"

case "${1:-}" in
    demo) packages="make python3-venv" ;;
    check) packages="make python3-venv" ;;   # make check installs the servers itself (make system-deps)
    *) echo "usage: $0 demo|check" >&2; exit 2 ;;
esac

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "setup.sh: installing Debian packages needs root: run as root, or install sudo" >&2
    exit 2
fi

missing=""
for pkg in $packages; do
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086  # word splitting of the package list is wanted
    $as_root apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q $missing >&2
fi
exec make "$1"

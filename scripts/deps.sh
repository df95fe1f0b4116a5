#!/bin/sh
# deps.sh - makes sure the Debian packages the build needs are installed; `deps.sh fuzz` adds what make fuzz
# needs (clang with libFuzzer and its OpenMP runtime).
# As root it installs what is missing with apt-get; otherwise it prints the exact command and fails.
set -e
pkgs="gcc make pkg-config libblis-dev libblis4-openmp libblis-openmp-dev libcjson-dev libpng-dev libcriterion-dev"
[ "$1" = fuzz ] && pkgs="$pkgs clang libclang-rt-14-dev libomp-14-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq $missing >/dev/null
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run:  sudo apt-get install -y$missing" >&2
    exit 1
fi

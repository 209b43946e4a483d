#!/bin/sh
# Installs the Debian packages ultramoe builds against (skips what is present).
set -e
need=
for p in build-essential libopenblas-dev libcjson-dev libopenmpi-dev openmpi-bin; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
[ -z "$need" ] && exit 0
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing:$need" >&2
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need

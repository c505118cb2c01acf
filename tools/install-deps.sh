#!/bin/sh
# Installs the Debian packages that building and testing mid need.
set -eu

packages="build-essential autoconf automake libtool pkg-config
libpam0g-dev libsodium-dev libconfig-dev libsystemd-dev libsqlite3-dev
libcmocka-dev libpam-wrapper libpamtest0-dev libnss-wrapper libuid-wrapper
pamtester openssh-server openssh-client sshpass iproute2 util-linux systemd
valgrind clang libclang-rt-14-dev sqlite3 dbus"

missing=
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# libnss_mid.so.2 must ignore MID_NSS_CACHE in a setuid program, or any
# user could point it at a cache of their own. A copy of nss_probe, setuid
# root, runs as the user nobody with MID_NSS_CACHE naming a cache that
# lists "envonly". It must read the default /run/mid/nss.cache instead,
# which a private mount namespace fills with a cache that lists
# "defaultonly". The same program without the setuid bit is the control
# and must follow the variable. Prints TAP.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root to install a setuid program and mount /run"
	exit 0
fi
if [ -n "${MID_ASAN_LIB:-}" ]; then
	echo "1..0 # SKIP AddressSanitizer does not run in setuid programs"
	exit 0
fi
for tool in unshare setpriv; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done

if [ -z "${MID_SETUID_INSIDE:-}" ]; then
	MID_SETUID_INSIDE=1 exec timeout 120 unshare -m --propagation private sh "$0" "$@"
fi

. "${MID_SRCDIR:?MID_SRCDIR must name the source directory}/tests/lib.sh"
mid_paths
MKCACHE=$BUILD/tests/nss/mkcache
PROBE=$BUILD/tests/hardening/nss_probe

DIR=$(mktemp -d /tmp/mid-hardening-setuid.XXXXXX) || exit 1
cleanup() {
	if [ "$TAP_FAILED" != 0 ] || [ -n "${MID_KEEP_TEST_DIR:-}" ]; then
		echo "# files kept in $DIR"
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

echo "1..10"

# Everything the user nobody runs or reads is in a directory it may enter.
chmod 755 "$DIR"
cp "$NSS_MODULE" "$DIR/libnss_mid.so.2"
cp "$PROBE" "$DIR/nss_probe_setuid"
cp "$PROBE" "$DIR/nss_probe_plain"
chown root:root "$DIR/nss_probe_setuid" "$DIR/nss_probe_plain"
chmod 644 "$DIR/libnss_mid.so.2"
chmod 4755 "$DIR/nss_probe_setuid"
chmod 755 "$DIR/nss_probe_plain"

"$MKCACHE" "$DIR/env.cache" user:envonly:60100:60100:/tmp:/bin/sh:+3600 || exit 1
chmod 644 "$DIR/env.cache"

# /run of this mount namespace only.
mount -t tmpfs -o mode=755 tmpfs /run || exit 1
mkdir -m 755 /run/mid
"$MKCACHE" /run/mid/nss.cache user:defaultonly:60200:60200:/tmp:/bin/sh:+3600 || exit 1
chmod 644 /run/mid/nss.cache

# probe PROGRAM NAME: runs PROGRAM as the user nobody with MID_NSS_CACHE set.
probe() {
	MID_NSS_CACHE=$DIR/env.cache setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$DIR/$1" "$DIR/libnss_mid.so.2" "$2" 2>&1
}

out=$(probe nss_probe_setuid envonly)
check_equal "setuid program runs in secure mode" "at_secure=1" "$(echo "$out" | head -1)"
check_equal "setuid program ignores MID_NSS_CACHE" "notfound" "$(echo "$out" | tail -1)"
out=$(probe nss_probe_setuid defaultonly)
check_equal "setuid program reads the default cache" "success 60200" "$(echo "$out" | tail -1)"

out=$(probe nss_probe_plain envonly)
check_equal "plain program runs in normal mode" "at_secure=0" "$(echo "$out" | head -1)"
check_equal "plain program follows MID_NSS_CACHE" "success 60100" "$(echo "$out" | tail -1)"
out=$(probe nss_probe_plain defaultonly)
check_equal "plain program skips the default cache" "notfound" "$(echo "$out" | tail -1)"

# setgid alone makes a program secure as well.
cp "$PROBE" "$DIR/nss_probe_setgid"
chown root:root "$DIR/nss_probe_setgid"
chmod 2755 "$DIR/nss_probe_setgid"
out=$(probe nss_probe_setgid envonly)
check_equal "setgid program runs in secure mode" "at_secure=1" "$(echo "$out" | head -1)"
check_equal "setgid program ignores MID_NSS_CACHE" "notfound" "$(echo "$out" | tail -1)"

# Without a default cache the setuid program finds nothing, even though
# MID_NSS_CACHE names a valid one.
rm /run/mid/nss.cache
out=$(probe nss_probe_setuid envonly)
check_equal "setuid program without a default cache" "unavail" "$(echo "$out" | tail -1)"
out=$(probe nss_probe_plain envonly)
check_equal "plain program still follows MID_NSS_CACHE" "success 60100" "$(echo "$out" | tail -1)"

[ "$TAP_FAILED" = 0 ]

#!/bin/sh
# Resolves ephemeral accounts with the real getent(1) and id(1) through
# libnss_mid.so.2, loaded by nss_wrapper in place of nsswitch.conf, so the
# host's own configuration is neither needed nor changed. Prints TAP.

builddir=${MID_BUILDDIR:?MID_BUILDDIR is not set; run the test through make check}
module=$builddir/nss_mid/.libs/libnss_mid.so.2
mkcache=$builddir/tests/nss/mkcache

if ! ldconfig -p 2>/dev/null | grep -q 'libnss_wrapper\.so '; then
	echo "1..0 # SKIP libnss_wrapper.so not found: install the Debian package libnss-wrapper"
	exit 0
fi

# An AddressSanitizer runtime must be the first library of a process, which
# it cannot be in getent(1).
if ldd "$module" 2>/dev/null | grep -q libasan; then
	echo "1..0 # SKIP libnss_mid.so.2 is built with AddressSanitizer"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nss_wrapper.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# nss_wrapper resolves through a module only when both of its files are
# set, so empty ones stand in for /etc/passwd and /etc/group.
: >"$tmp/passwd"
: >"$tmp/group"
cache=$tmp/nss.cache

wrapped() {
	env MID_NSS_CACHE="$cache" \
		LD_PRELOAD=libnss_wrapper.so \
		NSS_WRAPPER_PASSWD="$tmp/passwd" \
		NSS_WRAPPER_GROUP="$tmp/group" \
		NSS_WRAPPER_MODULE_SO_PATH="$module" \
		NSS_WRAPPER_MODULE_FN_PREFIX=mid \
		"$@"
}

n=0
# check NAME EXPECTED_STATUS EXPECTED_OUTPUT COMMAND...
check() {
	name=$1 want_status=$2 want_output=$3
	shift 3
	n=$((n + 1))
	output=$(wrapped "$@" 2>&1)
	status=$?
	if [ "$status" = "$want_status" ] && [ "$output" = "$want_output" ]; then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		{
			echo "command: $*"
			echo "expected status $want_status and output:"
			echo "$want_output"
			echo "got status $status and output:"
			echo "$output"
		} | sed 's/^/# /'
	fi
}

echo "1..14"

# getent(1) exits 2 when a key is not found.
check "getent passwd without cache" 2 "" getent passwd alice-eph

"$mkcache" "$cache" \
	user:alice-eph:60001:60001:/home/alice-eph:/bin/bash:+3600:Alice \
	group:alice-eph:60001:+3600 \
	user:old-eph:60002:60002:/home/old-eph:/bin/sh:-10 \
	group:old-eph:60002:-10 \
	managed:alice-eph || exit 1

alice="alice-eph:x:60001:60001:Alice:/home/alice-eph:/bin/bash"
check "getent passwd by name" 0 "$alice" getent passwd alice-eph
check "getent passwd by uid" 0 "$alice" getent passwd 60001
check "getent group by name" 0 "alice-eph:x:60001:" getent group alice-eph
check "getent group by gid" 0 "alice-eph:x:60001:" getent group 60001
check "getent passwd unknown name" 2 "" getent passwd mallory
check "getent passwd expired user" 2 "" getent passwd old-eph
check "getent group expired group" 2 "" getent group 60002
check "getent passwd enumerates live users" 0 "$alice" getent passwd
check "getent group enumerates live groups" 0 "alice-eph:x:60001:" getent group
check "id shows primary group only" 0 \
	"uid=60001(alice-eph) gid=60001(alice-eph) groups=60001(alice-eph)" id alice-eph

"$mkcache" "$cache" \
	user:bob-eph:60003:60003:/home/bob-eph:/bin/sh:+3600 || exit 1
check "getent passwd after republish" 0 \
	"bob-eph:x:60003:60003::/home/bob-eph:/bin/sh" getent passwd bob-eph

# The module runs inside every process, so it must export nothing but its
# entry points and import no call that could reach the agent's socket.
n=$((n + 1))
exports=$(nm -D --defined-only "$module" | awk '{ print $3 }' | grep -v '^_nss_mid_')
if [ -z "$exports" ]; then
	echo "ok $n - module exports only _nss_mid_ symbols"
else
	echo "not ok $n - module exports only _nss_mid_ symbols"
	echo "$exports" | sed 's/^/# unexpected export: /'
fi

n=$((n + 1))
imports=$(nm -D --undefined-only "$module" | awk '{ print $2 }' |
	grep -E '^(socket|connect|send|sendmsg|recv|recvmsg)(@|$)')
if [ -z "$imports" ]; then
	echo "ok $n - module imports no socket calls"
else
	echo "not ok $n - module imports no socket calls"
	echo "$imports" | sed 's/^/# unexpected import: /'
fi

#!/bin/sh
# Invalid user and group names through the real getent(1), with
# libnss_mid.so.2 loaded by nss_wrapper in place of nsswitch.conf: each is
# not found (getent exits 2) and prints nothing, while the valid name next
# to it resolves. Prints TAP.
set -u

builddir=${MID_BUILDDIR:?MID_BUILDDIR is not set; run the test through make check}
module=$builddir/nss_mid/.libs/libnss_mid.so.2
mkcache=$builddir/tests/nss/mkcache

if ! ldconfig -p 2>/dev/null | grep -q 'libnss_wrapper\.so '; then
	echo "1..0 # SKIP libnss_wrapper.so not found: install the Debian package libnss-wrapper"
	exit 0
fi
# An AddressSanitizer runtime must be the first library of a process, which
# it cannot be in getent(1).
if [ -n "${MID_ASAN_LIB:-}" ]; then
	echo "1..0 # SKIP libnss_mid.so.2 is built with AddressSanitizer"
	exit 0
fi

. "${MID_SRCDIR:?MID_SRCDIR must name the source directory}/tests/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mid-hardening-getent.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# nss_wrapper resolves through a module only when both of its files are
# set, so empty ones stand in for /etc/passwd and /etc/group.
: >"$tmp/passwd"
: >"$tmp/group"
"$mkcache" "$tmp/nss.cache" \
	user:ci-valid01:61000:61000:/tmp:/bin/sh:+3600 \
	group:mid-ci:61000:+3600 \
	managed:ci-valid01 || exit 1

wrapped() {
	env MID_NSS_CACHE="$tmp/nss.cache" \
		LD_PRELOAD=libnss_wrapper.so \
		NSS_WRAPPER_PASSWD="$tmp/passwd" \
		NSS_WRAPPER_GROUP="$tmp/group" \
		NSS_WRAPPER_MODULE_SO_PATH="$module" \
		NSS_WRAPPER_MODULE_FN_PREFIX=mid \
		"$@"
}

# not_found LABEL DATABASE NAME: one TAP line for getent exiting 2 with
# no output.
not_found() {
	output=$(wrapped getent "$2" -- "$3" 2>&1)
	status=$?
	if [ "$status" = 2 ] && [ -z "$output" ]; then
		tap_ok "getent $2 $1"
	else
		tap_not_ok "getent $2 $1"
		echo "#   expected status 2 and no output, got status $status and:"
		echo "$output" | sed 's/^/#   /'
	fi
}

newline=$(printf '\nx')
newline=${newline%x}
long256=$(printf '%0256d' 0 | tr 0 a)
long4096=$(printf '%04096d' 0 | tr 0 a)

echo "1..31"

check_equal "getent passwd valid name" "ci-valid01:x:61000:61000::/tmp:/bin/sh" \
	"$(wrapped getent passwd ci-valid01)"
check_equal "getent group valid name" "mid-ci:x:61000:" "$(wrapped getent group mid-ci)"
check_equal "getent passwd valid uid" "ci-valid01" "$(wrapped getent passwd 61000 | cut -d: -f1)"

for database in passwd group; do
	not_found "empty name" "$database" ""
	not_found "name of 256 bytes" "$database" "$long256"
	not_found "name of 4096 bytes" "$database" "$long4096"
	not_found "name with slash" "$database" "ci-valid01/"
	not_found "dot-dot" "$database" ".."
	not_found "dot-dot path" "$database" "../../etc/passwd"
	not_found "name with colon" "$database" "ci-valid01:x"
	not_found "name with trailing newline" "$database" "ci-valid01$newline"
	not_found "name with control bytes" "$database" "$(printf 'ci-\033[31m\007')"
	not_found "non-UTF-8 name" "$database" "$(printf 'ci-\377\376')"
	not_found "upper-case name" "$database" "CI-VALID01"
	# getent looks a number up as an ID.
	not_found "unknown id" "$database" "12345"
	not_found "id out of range" "$database" "99999999999999999999"
	not_found "name with leading dash" "$database" "-1"
done

[ "$TAP_FAILED" = 0 ]

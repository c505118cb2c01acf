#!/bin/sh
# Builds mid and the benchmark programs with optimisation, then runs the
# benchmark suites and prints one table per suite. Needs root: the NSS
# and PAM suites run in private mount namespaces.
#
# Usage: sudo bench/run.sh [--quick] [nss] [pam] [agent]
#   --quick   one small size and short rounds: a smoke run of a few seconds
#   (no suite named: all of them)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
quick=
suites=
for arg in "$@"; do
	case $arg in
	--quick) quick=1 ;;
	nss | pam | agent) suites="$suites $arg" ;;
	*)
		echo "bench/run.sh: unknown argument $arg; use --quick, nss, pam or agent" >&2
		exit 2
		;;
	esac
done
[ -n "$suites" ] || suites="nss pam agent"
if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: run as root: the suites use private mount namespaces" >&2
	exit 1
fi

BUILD=${MID_BENCH_BUILDDIR:-$top/build-bench}
OUT=$(mktemp -d /tmp/mid-bench.XXXXXX)
chmod 755 "$OUT"
trap 'rm -rf "$OUT"' EXIT

if [ ! -x "$BUILD/agentd/mid-agentd" ] || [ -n "${MID_BENCH_REBUILD:-}" ]; then
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null 2>&1)
	mkdir -p "$BUILD"
	(cd "$BUILD" && "$top/configure" -q CFLAGS="-O2 -g" && make -j2 -s >/dev/null)
fi

CC=${CC:-gcc}
CFLAGS="-O2 -g -Wall -Wextra -I$top/lib -include $BUILD/config.h"
$CC $CFLAGS -o "$OUT/gen_accounts" "$top/bench/gen_accounts.c" "$top/lib/cache_writer.c" \
	"$top/lib/cache.c"
$CC $CFLAGS -pthread -o "$OUT/bench_nss" "$top/bench/bench_nss.c" -ldl
mkdir -p "$OUT/nsslib"
$CC -O2 -shared -fPIC -fvisibility=hidden -o "$OUT/nsslib/libnss_floor.so.2" "$top/bench/nss_floor.c"
cp "$BUILD/nss_mid/.libs/libnss_mid.so.2" "$OUT/nsslib/"

echo "machine: $(nproc) cores, $(awk '/model name/ { sub(/.*: /, ""); print; exit }' /proc/cpuinfo)," \
	"$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
	"$(uname -sr); glibc $(ldd --version | awk 'NR == 1 { print $NF }')"
echo "command: bench/run.sh $*"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"

if [ -n "$quick" ]; then
	export BENCH_ROUNDS=3 BENCH_ROUND_MS=20
	export BENCH_AGENT_SECONDS=${BENCH_AGENT_SECONDS:-0.3}
	sizes="10 1000"
else
	sizes="10 1000 10000 100000"
fi

for suite in $suites; do
	echo
	case $suite in
	nss)
		echo "== NSS: nanoseconds per call, median of rounds"
		"$top/bench/nss.sh" "$OUT" $sizes
		;;
	pam)
		echo "== PAM: microseconds per transaction (start, authenticate, acct_mgmt, end)"
		"$top/bench/pam.sh" "$OUT" "$BUILD"
		;;
	agent)
		echo "== Agent"
		"$top/bench/agent.sh" "$OUT" "$BUILD" $sizes
		;;
	esac
done

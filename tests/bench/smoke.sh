#!/bin/sh
# Smoke run of the benchmark suite (bench/run.sh --quick): every suite
# must run to completion and print its table. No figure is checked
# against a threshold here; BENCHMARKS.md records the full runs.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP the benchmarks need root for private mount namespaces"
	exit 0
fi
if [ -n "${MID_ASAN_LIB:-}" ]; then
	echo "1..0 # SKIP glibc and PAM cannot load modules built with AddressSanitizer"
	exit 0
fi

out=$(mktemp /tmp/mid-bench-smoke.XXXXXX)
trap 'rm -f "$out"' EXIT
MID_BENCH_BUILDDIR=${MID_BUILDDIR:?} BENCH_AGENT_SECONDS=0.3 BENCH_AGENT_SIZES="10 1000" \
	timeout 300 "${MID_SRCDIR:?}/bench/run.sh" --quick >"$out" 2>&1
status=$?

echo "1..5"
n=0
failures=0
result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failures=$((failures + 1))
	fi
}
result "$status" "bench/run.sh --quick exits 0"
grep -qE '^1000 +name +1 ' "$out"
result $? "NSS table has a row for 1000 accounts"
grep -qE '^pam_mid +[0-9.]+ ' "$out"
result $? "PAM table has a pam_mid row"
grep -qE '^verify +64 +[0-9]+ ' "$out"
result $? "agent table has verification at 64 clients"
grep -qE '^1000 +[0-9]+ +[0-9.]+ ' "$out"
result $? "agent table has start-up figures for 1000 leases"
# The benchmark's own output explains a failure.
if [ "$failures" != 0 ]; then
	sed 's/^/# /' "$out" | tail -40
fi

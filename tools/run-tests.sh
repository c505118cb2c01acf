#!/bin/sh
# Builds mid twice, plainly and with AddressSanitizer and
# UndefinedBehaviorSanitizer, runs every test in both builds, checks that
# the release tarball builds and passes its tests (make distcheck), and
# ends with one line "N passed, N failed, N skipped".
#
# Usage: tools/run-tests.sh [--quick]   (--quick: the plain build only)
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
quick=
[ "${1:-}" = --quick ] && quick=1

"$top/tools/install-deps.sh" || exit 1

passed=0 failed=0 skipped=0

# count BUILD_DIR: adds the test results of one build to the totals.
count() {
	log=$1/test-suite.log
	if [ ! -f "$log" ]; then
		echo "run-tests: no test results in $1" >&2
		failed=$((failed + 1))
		return
	fi
	p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
	x=$(sed -n 's/^# XFAIL: *//p' "$log" | head -1)
	s=$(sed -n 's/^# SKIP: *//p' "$log" | head -1)
	f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
	xp=$(sed -n 's/^# XPASS: *//p' "$log" | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1)
	passed=$((passed + ${p:-0} + ${x:-0}))
	skipped=$((skipped + ${s:-0}))
	failed=$((failed + ${f:-0} + ${xp:-0} + ${e:-0}))
	# Show what failed, with its output, so a CI log explains itself.
	if [ $((${f:-0} + ${xp:-0} + ${e:-0})) -gt 0 ]; then
		grep -E '^(FAIL|ERROR|XPASS):' "$log" | head -40
		sed -n '/^FAIL\|^ERROR/,/^$/p' "$1"/tests/*/*.log 2>/dev/null | head -200
	fi
}

# build NAME CONFIGURE_ARGS...: configures, builds and tests one variant.
build() {
	name=$1
	shift
	dir=$top/build-$name
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "== $name build: configure $*"
	if ! (cd "$dir" && "$top/configure" -q "$@" && make -j2 -s >build.out 2>&1); then
		tail -40 "$dir/build.out" 2>/dev/null
		echo "run-tests: the $name build failed" >&2
		failed=$((failed + 1))
		return
	fi
	echo "== $name build: make check"
	(cd "$dir" && make -j2 -s check >check.out 2>&1)
	grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' "$dir/check.out" | sed "s/^/[$name] /"
	count "$dir"
}

echo "== autoreconf"
autoreconf -fi >/dev/null 2>&1 || { echo "run-tests: autoreconf failed" >&2; exit 1; }

# fuzz_smoke SECONDS: builds every libFuzzer target and runs each briefly;
# each target counts as one test.
fuzz_smoke() {
	dir=$top/build-fuzz
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "== fuzz smoke run: ${1}s per target"
	if ! "$top/fuzz/build.sh" "$dir" >"$dir/build.out" 2>&1; then
		tail -20 "$dir/build.out"
		echo "not ok - fuzz targets build"
		failed=$((failed + 1))
		return
	fi
	"$top/fuzz/run.sh" "$dir" "$1" >"$dir/run.out" 2>&1
	grep -E '^fuzz_' "$dir/run.out" | while read -r line; do echo "[fuzz] $line"; done
	ok=$(grep -cE '^fuzz_.* ok$' "$dir/run.out")
	bad=$(grep -cE '^fuzz_.* FAILED' "$dir/run.out")
	passed=$((passed + ok))
	failed=$((failed + bad))
}

# valgrind_run NAME: runs one test program of the plain build under
# valgrind, children (the agent, midctl) included; any memory error or
# definite leak fails it. Each program counts as one test.
valgrind_run() {
	dir=$top/build-plain
	log=$dir/$(echo "$1" | tr / _).valgrind.log
	if (cd "$dir" && MID_BUILDDIR=$dir MID_SRCDIR=$top CMOCKA_MESSAGE_OUTPUT=TAP \
		timeout 600 valgrind -q --trace-children=yes --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite "./$1" >"$log" 2>&1); then
		echo "ok - valgrind $1"
		passed=$((passed + 1))
	else
		grep -v '^PWRAP' "$log" | tail -30
		echo "not ok - valgrind $1"
		failed=$((failed + 1))
	fi
}

build plain
if [ -z "$quick" ]; then
	echo "== valgrind: the PAM and NSS tests"
	valgrind_run tests/pam/test_pam
	valgrind_run tests/nss/test_cache
	valgrind_run tests/nss/test_nss_module
	fuzz_smoke 5
	build sanitizers --enable-sanitizers
	echo "== make distcheck"
	if (cd "$top/build-plain" && make -j2 -s distcheck >distcheck.out 2>&1); then
		echo "ok - make distcheck"
		passed=$((passed + 1))
	else
		tail -40 "$top/build-plain/distcheck.out"
		echo "not ok - make distcheck"
		failed=$((failed + 1))
	fi
fi

# pam_wrapper leaves a copy of its service dir per process; remove those
# whose process is gone.
for d in /tmp/pam.?; do
	[ -f "$d/pid" ] || continue
	kill -0 "$(cat "$d/pid")" 2>/dev/null || rm -rf "$d"
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]

#!/bin/sh
# Runs every fuzz target that fuzz/build.sh put in OUTDIR for SECONDS
# each, one after another. Seeds come from fuzz/corpus/TARGET and stay
# untouched: new inputs go to OUTDIR/corpus/TARGET and crashing inputs to
# OUTDIR/artifacts. A target's dictionary fuzz/TARGET.dict is used when it
# exists. Prints executions, coverage and the result of each target, and
# exits 1 when any target crashed, leaked or timed out.
#
# Usage: fuzz/run.sh OUTDIR SECONDS
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 OUTDIR SECONDS" >&2
	exit 2
fi

src=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "$1" && pwd) || exit 2
seconds=$2
frame_max=$(sed -n 's/^#define MID_FRAME_MAX \([0-9]*\).*/\1/p' "$src/lib/protocol.h")
if [ -z "$frame_max" ]; then
	echo "$0: no MID_FRAME_MAX in $src/lib/protocol.h" >&2
	exit 2
fi
failed=0
summary=""

# Leaks inside libconfig itself are not mid's. lsan.supp lists them.
LSAN_OPTIONS="suppressions=$src/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

mkdir -p "$out/artifacts"
for binary in "$out"/fuzz_*; do
	[ -x "$binary" ] || continue
	target=$(basename "$binary")
	log="$out/$target.log"

	set -- -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
		-artifact_prefix="$out/artifacts/$target-"
	# Replies with a full page come close to MID_FRAME_MAX bytes.
	[ "$target" = fuzz_protocol ] && set -- "$@" -max_len="$frame_max"
	[ -f "$src/fuzz/$target.dict" ] && set -- "$@" -dict="$src/fuzz/$target.dict"
	mkdir -p "$out/corpus/$target"
	set -- "$@" "$out/corpus/$target"
	[ -d "$src/fuzz/corpus/$target" ] && set -- "$@" "$src/fuzz/corpus/$target"

	echo "running $target for ${seconds}s, log in $log"
	"$binary" "$@" >"$log" 2>&1
	status=$?

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	features=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	if [ "$status" -eq 0 ]; then
		result=ok
	else
		result="FAILED (exit $status; see $log and $out/artifacts)"
		failed=1
	fi
	summary="$summary$(printf '%-16s execs %-10s cov %-6s ft %-6s corpus %-6s %s' \
		"$target" "${execs:-?}" "${cov:-?}" "${features:-?}" "${corpus:-?}" "$result")
"
done

if [ -z "$summary" ]; then
	echo "$0: no fuzz targets in $out; run fuzz/build.sh $out first" >&2
	exit 2
fi
printf '%s' "$summary"
exit "$failed"

#!/bin/sh
# NSS benchmark: getpwnam_r, getpwuid_r and a miss through glibc with
# "passwd: mid", "files", "files mid" and a floor module, and libnss_mid
# called directly; 1 and 8 threads; at each account count given.
# Run by bench/run.sh, which builds the programs into $OUT.
# Usage: bench/nss.sh OUT SIZES...
set -eu
OUT=$1
shift
NSSLIB=$OUT/nsslib

# run_in CONFIG PASSWD GROUP COMMAND...: runs COMMAND in a private mount
# namespace where nsswitch.conf says "passwd: CONFIG".
run_in() {
	config=$1 passwd=$2 group=$3
	shift 3
	printf 'passwd: %s\ngroup: files\nshadow: files\n' "$config" >"$OUT/nsswitch.conf"
	unshare -m sh -c '
		mount --bind "$1" /etc/nsswitch.conf
		mount --bind "$2" /etc/passwd
		mount --bind "$3" /etc/group
		shift 3
		exec "$@"' sh "$OUT/nsswitch.conf" "$passwd" "$group" "$@"
}

# Both files start with the host's own accounts, as on a real host.
cp /etc/passwd "$OUT/passwd.system"
cp /etc/group "$OUT/group.system"

printf '%-8s %-5s %-4s %10s %10s %10s %10s %10s %8s\n' accounts op thr floor mid files \
	files+mid direct mid/floor
for n in "$@"; do
	"$OUT/gen_accounts" "$OUT/nss.cache" "$OUT/passwd.$n" "$OUT/group.$n" "$n"
	export MID_NSS_CACHE="$OUT/nss.cache" LD_LIBRARY_PATH="$NSSLIB"
	for op in name uid miss; do
		for threads in 1 8; do
			if [ "$op" = miss ]; then floor=-; else
				floor=$(run_in floor "$OUT/passwd.system" "$OUT/group.system" \
					"$OUT/bench_nss" glibc "$op" "$n" "$threads")
			fi
			mid=$(run_in mid "$OUT/passwd.system" "$OUT/group.system" \
				"$OUT/bench_nss" glibc "$op" "$n" "$threads")
			if [ "$op" = miss ]; then
				# A miss through files alone versus files then mid.
				files=$(run_in files "$OUT/passwd.system" "$OUT/group.system" \
					"$OUT/bench_nss" glibc miss "$n" "$threads")
			else
				files=$(run_in files "$OUT/passwd.$n" "$OUT/group.$n" \
					"$OUT/bench_nss" glibc "$op" "$n" "$threads")
			fi
			files_mid=$(run_in "files mid" "$OUT/passwd.system" "$OUT/group.system" \
				"$OUT/bench_nss" glibc "$op" "$n" "$threads")
			direct=$("$OUT/bench_nss" direct "$op" "$n" "$threads" "$NSSLIB/libnss_mid.so.2")
			if [ "$floor" = - ]; then ratio=-; else
				ratio=$(awk -v a="$mid" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
			fi
			printf '%-8s %-5s %-4s %10s %10s %10s %10s %10s %8s\n' "$n" "$op" "$threads" \
				"$floor" "$mid" "$files" "$files_mid" "$direct" "$ratio"
		done
	done
done

#!/bin/sh
# Draws the scaling curve from a bench/run.sh output: nanoseconds per
# getpwnam_r hit (one thread) against the number of accounts, for the
# floor module, libnss_mid through glibc, libnss_mid called directly and
# nss_files. Needs gnuplot (Debian package gnuplot-nox).
# Usage: bench/plot.sh RESULTS.txt OUT.png
set -eu
results=$1 png=$2
data=$(mktemp)
trap 'rm -f "$data"' EXIT

# Rows of the NSS table: accounts op threads floor mid files files+mid direct ratio
awk '$2 == "name" && $3 == 1 && $1 ~ /^[0-9]+$/ { print $1, $4, $5, $6, $8 }' "$results" >"$data"
if [ ! -s "$data" ]; then
	echo "bench/plot.sh: no NSS rows in $results" >&2
	exit 1
fi

gnuplot <<EOT
set terminal png size 900,560 noenhanced
set output "$png"
set title "getpwnam_r hit, one thread: cost per call by number of accounts"
set xlabel "accounts"
set ylabel "nanoseconds per call"
set logscale xy
set key top left
set grid
plot "$data" using 1:4 with linespoints title "nss_files (passwd)", \
     "$data" using 1:3 with linespoints title "libnss_mid through glibc", \
     "$data" using 1:2 with linespoints title "floor module through glibc", \
     "$data" using 1:5 with linespoints title "libnss_mid called directly"
EOT

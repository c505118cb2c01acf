#!/bin/sh
# Agent benchmark: verification and issuance throughput with p50/p99
# latency at 1, 8 and 64 concurrent clients sending back to back, and
# verification latency at fixed rates from 64 clients. Then, for each
# lease count: start-up time to ready, resident memory, the latency of
# issuing one ephemeral account, which includes republishing the NSS
# cache, and that of a policy reload, which rebuilds the cache.
# Usage: bench/agent.sh OUT BUILD SIZES...
set -eu
OUT=$1 BUILD=$2
shift 2
SIZES=${BENCH_AGENT_SIZES:-$*}
top=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${BENCH_AGENT_SECONDS:-3}
DIR=$OUT/agent
SOCK=$DIR/agent.sock
# The NSS cache lives on tmpfs, as /run does on a systemd host.
RUN=$(mktemp -d /dev/shm/mid-bench-run.XXXXXX)
trap 'rm -rf "$RUN"' EXIT
MIDCTL="$BUILD/midctl/midctl --socket $SOCK"

cc -O2 -g -I"$top/lib" -include "$BUILD/config.h" -pthread -o "$OUT/bench_agent" \
	"$top/bench/bench_agent.c" "$top/lib/protocol.c" "$top/lib/cursor.c"

agent_start() {
	start=$(date +%s%N)
	MID_LOG_STDERR=1 "$BUILD/agentd/mid-agentd" --config "$DIR/mid.conf" --socket "$SOCK" \
		--state-dir "$DIR/state" --runtime-dir "$RUN" 2>>"$DIR/agent.log" &
	AGENT=$!
	until $MIDCTL status >/dev/null 2>&1; do sleep 0.005; done
	READY_MS=$(( ($(date +%s%N) - start) / 1000000 ))
}

agent_stop() {
	kill "$AGENT" && wait "$AGENT" 2>/dev/null || true
}

mkdir -p "$DIR/state"
chmod 700 "$DIR" "$DIR/state"
cat >"$DIR/mid.conf" <<EOT
lockout = { failures = 0; };
accounts = ( { name = "nobody"; ttl = "1h"; max_ttl = "1d"; } );
classes = ( { name = "bench"; prefix = "bn-"; uid_min = 300000; uid_max = 899999;
              group = "mid-bench"; gid = 300000; home = "/nonexistent"; ttl = "1h";
              create_home = false; } );
EOT
chmod 600 "$DIR/mid.conf"

agent_start
cred=$($MIDCTL --field credential issue nobody)
printf '%-8s %7s %12s %8s %8s\n' request clients "requests/s" "p50 us" "p99 us"
for clients in 1 8 64; do
	set -- $("$OUT/bench_agent" "$SOCK" verify "$clients" "$SECONDS_PER_RUN" nobody "$cred")
	printf '%-8s %7s %12s %8s %8s\n' verify "$clients" "$1" "$2" "$3"
done
for clients in 1 8 64; do
	set -- $("$OUT/bench_agent" "$SOCK" issue "$clients" "$SECONDS_PER_RUN" nobody)
	printf '%-8s %7s %12s %8s %8s\n' issue "$clients" "$1" "$2" "$3"
done
# The same verifications offered at a fixed rate by 64 clients, with
# latency counted from the time each request was due.
echo
printf '%-8s %7s %12s %12s %8s %8s\n' request clients "offered/s" "requests/s" "p50 us" "p99 us"
for rate in 10000 25000 50000; do
	set -- $(BENCH_AGENT_RATE=$rate "$OUT/bench_agent" "$SOCK" verify 64 "$SECONDS_PER_RUN" nobody "$cred")
	printf '%-8s %7s %12s %12s %8s %8s\n' verify 64 "$rate" "$1" "$2" "$3"
done
agent_stop

echo
printf '%-8s %10s %10s %16s %10s\n' leases "ready ms" "RSS MiB" "issue+publish ms" "reload ms"
for n in $SIZES; do
	rm -rf "$DIR"/state/*
	agent_start
	agent_stop
	now=$(date +%s)
	sqlite3 "$DIR/state/state.db" <<EOT
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $n - 1)
INSERT INTO leases (id, account, class, uid, gid, grp, home, shell, gecos, hash, created_at,
                    expires_at, max_expires_at, max_uses, uses, state, requester_uid, reason)
SELECT printf('%016x', i), printf('bn-%08x', i), 'bench', 300000 + i, 300000, 'mid-bench',
       '/nonexistent', '/bin/sh', 'bench', zeroblob(32), $now, $now + 86400, $now + 86400,
       0, 0, 0, 0, '' FROM c;
EOT
	agent_start
	rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/"$AGENT"/status)
	set -- $("$OUT/bench_agent" "$SOCK" issue 1 1 class:bench)
	publish=$(awk -v us="$2" 'BEGIN { printf "%.1f", us / 1000 }')
	set -- $("$OUT/bench_agent" "$SOCK" reload 1 1 -)
	reload=$(awk -v us="$2" 'BEGIN { printf "%.1f", us / 1000 }')
	printf '%-8s %10s %10s %16s %10s\n' "$n" "$READY_MS" "$rss" "$publish" "$reload"
	agent_stop
done

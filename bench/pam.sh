#!/bin/sh
# PAM benchmark: whole transactions through the real Linux-PAM stack with
# pam_mid (and a real agent), pam_permit (the floor) and pam_unix with a
# yescrypt password, in a private mount namespace whose /etc/pam.d,
# /etc/passwd and /etc/shadow name a benchmark account. The last row adds
# to pam_permit one socket round trip to an echo process: the least any
# module that sends a request to a daemon can cost.
# Usage: bench/pam.sh OUT BUILD
set -eu
OUT=$1 BUILD=$2
top=$(cd "$(dirname "$0")/.." && pwd)

cc ${CFLAGS:-} -O2 -o "$OUT/bench_pam" "$top/bench/bench_pam.c" -lpam
# A yescrypt hash of the benchmark password, made by libcrypt itself.
cat >"$OUT/hash.c" <<'EOT'
#include <crypt.h>
#include <stdio.h>
int main(void)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)))
		return 1;
	puts(crypt("bench-password", salt));
	return 0;
}
EOT
cc -o "$OUT/hash" "$OUT/hash.c" -lcrypt
hash=$("$OUT/hash")

timeout 300 unshare -m sh -s "$OUT" "$BUILD" "$hash" <<'EOS'
set -eu
OUT=$1 BUILD=$2 hash=$3
mkdir -p "$OUT/pam.d" "$OUT/state" "$OUT/run"
chmod 700 "$OUT/state"
cp /etc/passwd "$OUT/passwd"
cp /etc/shadow "$OUT/shadow"
echo "mid-bench:x:59998:59998::/nonexistent:/bin/sh" >>"$OUT/passwd"
echo "mid-bench:$hash:19000:0:99999:7:::" >>"$OUT/shadow"
mount --bind "$OUT/passwd" /etc/passwd
mount --bind "$OUT/shadow" /etc/shadow
cat >"$OUT/mid.conf" <<EOT
lockout = { failures = 0; };
accounts = ( { name = "mid-bench"; ttl = "1h"; } );
EOT
chmod 600 "$OUT/mid.conf"
m="$BUILD/pam_mid/.libs/pam_mid.so socket=$OUT/agent.sock cache=$OUT/run/nss.cache"
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' >"$OUT/pam.d/bench-permit"
printf 'auth required pam_unix.so\naccount required pam_unix.so\n' >"$OUT/pam.d/bench-unix"
printf 'auth required %s\naccount required %s\n' "$m" "$m" >"$OUT/pam.d/bench-mid"
# Linux-PAM reads "other" for the module types a service file leaves out.
printf 'auth required pam_deny.so\naccount required pam_deny.so\npassword required pam_deny.so\nsession required pam_deny.so\n' \
	>"$OUT/pam.d/other"
mount --bind "$OUT/pam.d" /etc/pam.d

MID_LOG_STDERR=1 "$BUILD/agentd/mid-agentd" --config "$OUT/mid.conf" --socket "$OUT/agent.sock" \
	--state-dir "$OUT/state" --runtime-dir "$OUT/run" 2>"$OUT/agent.log" &
agent=$!
trap 'kill $agent 2>/dev/null' EXIT
for _ in $(seq 100); do
	"$BUILD/midctl/midctl" --socket "$OUT/agent.sock" status >/dev/null 2>&1 && break
	sleep 0.05
done
cred=$("$BUILD/midctl/midctl" --socket "$OUT/agent.sock" --field credential issue mid-bench)

permit=$("$OUT/bench_pam" bench-permit mid-bench x)
mid=$("$OUT/bench_pam" bench-mid mid-bench "$cred")
unix=$("$OUT/bench_pam" bench-unix mid-bench bench-password)
floor=$("$OUT/bench_pam" --socket-floor "$OUT")
printf '%-12s %12s %10s\n' stack "us/login" "vs permit"
printf '%-12s %12s %10s\n' pam_permit "$permit" 1.00
printf '%-12s %12s %10s\n' pam_mid "$mid" "$(awk -v a="$mid" -v b="$permit" 'BEGIN { printf "%.2f", a / b }')"
printf '%-12s %12s %10s\n' pam_unix "$unix" "$(awk -v a="$unix" -v b="$permit" 'BEGIN { printf "%.2f", a / b }')"
# What any module that sends a request to a daemon adds at least: one
# connect, request and reply to a process that only echoes it.
printf '%-12s %12s %10s\n' "+ echo rtt" "$(awk -v a="$floor" -v b="$permit" 'BEGIN { printf "%.1f", a + b }')" \
	"$(awk -v a="$floor" -v b="$permit" 'BEGIN { printf "%.2f", (a + b) / b }')"
EOS

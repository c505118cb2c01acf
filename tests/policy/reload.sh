#!/bin/sh
# Policy reload from the shell against a real mid-agentd, and the output
# and exit status of midctl explain. With a valid policy, SIGHUP and midctl
# reload revoke the leases of removed accounts and make new accounts
# issuable. With an invalid one, the running policy stays. Credentials are
# verified through pam_mid with pamtester under pam_wrapper.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root: only root may reload the policy"
	exit 0
fi
for tool in pamtester ldconfig setpriv; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done
if ! ldconfig -p | grep -q libpam_wrapper.so; then
	echo "1..0 # SKIP libpam_wrapper.so is not installed"
	exit 0
fi

. "${MID_SRCDIR:?MID_SRCDIR must name the source directory}/tests/lib.sh"
mid_paths
DIR=$(mktemp -d /tmp/mid-reload.XXXXXX)
CONF=$DIR/mid.conf
SOCK=$DIR/agent.sock

cleanup() {
	if [ -n "${AGENT_PID:-}" ]; then
		kill "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	if [ "$TAP_FAILED" != 0 ] || [ -n "${MID_KEEP_TEST_DIR:-}" ]; then
		echo "# logs kept in $DIR"
		sed 's/^/# agent: /' "$DIR/agent.log" 2>/dev/null | tail -30
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

midctl() {
	"$MIDCTL" --socket "$SOCK" "$@"
}

# issue ARGS...: midctl issue, with its output in the test directory; the
# exit status shows whether the policy allowed it.
issue() {
	midctl issue "$@" >>"$DIR/issue.log" 2>&1
}

# run COMMAND...: runs COMMAND with its output in $OUT and $ERR and
# its exit status in $STATUS.
run() {
	"$@" >"$DIR/out" 2>"$DIR/err"
	STATUS=$?
	OUT=$(cat "$DIR/out")
	ERR=$(cat "$DIR/err")
}

# check_contains NAME TEXT PART
check_contains() {
	case $2 in
	*"$3"*) tap_ok "$1" ;;
	*)
		tap_not_ok "$1"
		echo "#   expected to contain: '$3'"
		echo "#   actual: '$2'" | head -20
		;;
	esac
}

# verify ACCOUNT CREDENTIAL: authenticates through pam_mid, as a login
# through the sshd service would.
verify() {
	printf '%s\n' "$2" |
		LD_PRELOAD="${MID_ASAN_LIB:+$MID_ASAN_LIB:}libpam_wrapper.so" PAM_WRAPPER=1 \
			PAM_WRAPPER_SERVICE_DIR="$DIR/pam.d" \
			pamtester sshd "$1" authenticate >>"$DIR/pamtester.log" 2>&1
}

# policy FILE ACCOUNT_RULES: writes a policy with these account rules,
# readable and writable by root only, as the agent requires.
policy() {
	cat >"$1.new" <<EOT
lockout = { failures = 0; };
accounts = (
$2
);
EOT
	chmod 600 "$1.new"
	mv "$1.new" "$1"
}

# rule NAME [SETTINGS]: one account rule, one line.
rule() {
	echo "  { name = \"$1\"; ${2:-} },"
}

# last_rule NAME [SETTINGS]: the rule that closes the list, without a comma.
last_rule() {
	echo "  { name = \"$1\"; ${2:-} }"
}

# wait_for COMMAND...: retries COMMAND every 50 ms, 100 times.
wait_for() {
	for _ in $(seq 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# log_count TEXT: how many lines of the agent's log contain TEXT.
log_count() {
	grep -c -F "$1" "$DIR/agent.log"
}

# log_grew TEXT COUNT: whether more than COUNT lines contain TEXT now.
log_grew() {
	[ "$(log_count "$1")" -gt "$2" ]
}

# lease_state LEASE: the state midctl list shows for LEASE.
lease_state() {
	midctl list | awk -v lease="$1" '$1 == lease { print $4 }'
}

mkdir -p "$DIR/pam.d"
cat >"$DIR/pam.d/sshd" <<EOT
auth required $PAM_MODULE socket=$SOCK cache=$DIR/run/nss.cache
EOT
echo "auth required pam_deny.so" >"$DIR/pam.d/other"

# Lines 3 to 7 contain the rules, in this order.
policy "$CONF" "$(rule daemon)
$(rule bin 'services = ["sshd"];')
$(rule sys)
$(rule lp 'timezone = "UTC"; hours = ["Mon-Fri 09:00-17:00"];')
$(last_rule mail 'sources = ["10.0.0.0/8"];')"

MID_LOG_STDERR=1 "$AGENTD" --config "$CONF" --socket "$SOCK" --state-dir "$DIR/state" \
	--runtime-dir "$DIR/run" >>"$DIR/agent.log" 2>&1 &
AGENT_PID=$!
check "agent starts" wait_for midctl status

# ---- explain ----

run midctl explain bin --service sshd
check_equal "explain allowed exits 0" 0 "$STATUS"
check_equal "explain allowed ends with the verdict" "allowed by account bin ($CONF:4)" \
	"$(echo "$OUT" | tail -n 1)"
check_equal "explain starts with the rule" "account bin: rule at $CONF:4" \
	"$(echo "$OUT" | head -n 1)"
check_contains "explain shows the service line" "$OUT" "service sshd: allowed"
check_contains "explain shows the source line" "$OUT" "source local: allowed (no sources list)"
check_equal "explain prints nothing on stderr" "" "$ERR"

run midctl explain bin --service su
check_equal "explain denied exits 1" 1 "$STATUS"
check_equal "explain denied ends with the verdict" "denied by services of account bin ($CONF:4)" \
	"$(echo "$OUT" | tail -n 1)"
check_contains "explain denied shows why" "$OUT" "service su: denied, services are sshd"

run midctl explain mail --source 10.9.8.7
check_equal "explain source allowed exits 0" 0 "$STATUS"
check_contains "explain names the matching source" "$OUT" "source 10.9.8.7: allowed by 10.0.0.0/8"
run midctl explain mail --source local
check_equal "explain --source local against a sources list exits 1" 1 "$STATUS"
check_contains "explain local source denied" "$OUT" "source local: denied, sources are 10.0.0.0/8"

run midctl explain lp --at 2026-12-07T10:00:00Z
check_equal "explain --at inside hours exits 0" 0 "$STATUS"
check_contains "explain --at shows the time" "$OUT" \
	"time Mon 2026-12-07 10:00 (UTC): allowed by Mon-Fri 09:00-17:00"
run midctl explain lp --at 2026-12-06
check_equal "explain --at a Sunday exits 1" 1 "$STATUS"
check_equal "explain --at a Sunday names the rule" "denied by hours of account lp ($CONF:6)" \
	"$(echo "$OUT" | tail -n 1)"

run midctl --json explain bin --service sshd
check_equal "explain --json allowed exits 0" 0 "$STATUS"
verdict='"verdict":"allowed by account bin ('"$CONF"':4)"'
first_line='"account bin: rule at '"$CONF"':4"'
case $OUT in
'{"allowed":true,'"$verdict"',"lines":['"$first_line"','*'"service sshd: allowed",'*']}')
	tap_ok "explain --json prints allowed, verdict and lines" ;;
*)
	tap_not_ok "explain --json prints allowed, verdict and lines"
	echo "#   actual: $OUT"
	;;
esac
run midctl --json explain bin --service su
check_equal "explain --json denied exits 1" 1 "$STATUS"
check_contains "explain --json denied" "$OUT" \
	'{"allowed":false,"verdict":"denied by services of account bin'

# An unknown account and an existing one without a rule read the same.
run midctl explain nosuchacct
unknown_status=$STATUS
unknown_out=$(echo "$OUT" | sed 's/nosuchacct/NAME/g')
run midctl explain proxy
check_equal "explain unknown and unmanaged accounts exit the same" "$unknown_status" "$STATUS"
check_equal "explain unknown and unmanaged accounts print the same" "$unknown_out" \
	"$(echo "$OUT" | sed 's/proxy/NAME/g')"
check_equal "explain without a rule exits 1" 1 "$STATUS"
check_equal "explain without a rule names the file" "denied: no rule in $CONF names proxy" \
	"$(echo "$OUT" | tail -n 1)"

for args in "explain" "explain bin --class bin" "explain bin --at tomorrow" "explain bin --at +" \
	"explain bin --at 1970-01-01" "explain bad/name" "explain bin --as bad/name" \
	"--field lease explain bin" "explain bin extra"; do
	# shellcheck disable=SC2086 # each entry is a list of arguments
	run midctl $args
	check_equal "midctl $args is a usage error" 2 "$STATUS"
done
run "$MIDCTL" --socket "$DIR/missing.sock" explain bin
check_equal "explain without an agent exits 3" 3 "$STATUS"

# ---- SIGHUP with a valid policy ----

daemon_cred=$(midctl --field credential issue daemon)
daemon_lease=$(echo "$daemon_cred" | cut -d_ -f2)
sys_cred=$(midctl --field credential issue sys)
check "daemon credential verifies before the reload" verify daemon "$daemon_cred"
check_fails "games is not issuable before the reload" issue games

policy "$CONF" "$(rule games)
$(rule bin 'services = ["sshd"];')
$(last_rule sys)"
kill -HUP "$AGENT_PID"
check "SIGHUP loads the new policy" wait_for midctl explain games
check_equal "SIGHUP revokes the lease of a removed account" revoked "$(lease_state "$daemon_lease")"
check_fails "the removed account's credential stops verifying" verify daemon "$daemon_cred"
check_fails "the removed account is not issuable" issue daemon
games_cred=$(midctl --field credential issue games)
check "a new account is issuable after SIGHUP" test -n "$games_cred"
check "a kept account's credential still verifies" verify sys "$sys_cred"

# ---- midctl reload with a valid policy ----

games_lease=$(echo "$games_cred" | cut -d_ -f2)
policy "$CONF" "$(rule man)
$(last_rule sys)"
run midctl reload
check_equal "midctl reload exits 0" 0 "$STATUS"
check_equal "midctl reload prints the result" "reloaded $CONF: 2 accounts, 0 classes" "$OUT"
check_equal "midctl reload revokes the removed account's lease" revoked \
	"$(lease_state "$games_lease")"
check_fails "the removed account's credential stops verifying" verify games "$games_cred"
check "a new account is issuable after midctl reload" issue man

run midctl reload now
check_equal "midctl reload with an argument is a usage error" 2 "$STATUS"

chmod 755 "$DIR"
run setpriv --reuid=65534 --regid=65534 --clear-groups "$MIDCTL" --socket "$SOCK" reload
check_equal "midctl reload as nobody exits 1" 1 "$STATUS"
check_contains "midctl reload as nobody is refused" "$ERR" "only root may reload the policy"

# The agent, like sshd, refuses a policy that others could write.
chmod 664 "$CONF"
run midctl reload
check_equal "midctl reload of a group-writable policy exits 1" 1 "$STATUS"
check "the running policy stays after a refused reload" issue man
chmod 600 "$CONF"

# ---- an invalid policy ----

cat >"$CONF.new" <<EOT
accounts = (
  { name = "man"; ttl = "soon"; },
  { name = "sys"; sources = ["10.0.0.1/8"]; },
  { name = "bin"; hours = ["Mon-Fri 08:00-25:00"]; }
);
EOT
chmod 600 "$CONF.new"
mv "$CONF.new" "$CONF"
run midctl reload
check_equal "midctl reload of an invalid policy exits 1" 1 "$STATUS"
check_equal "midctl reload of an invalid policy prints nothing on stdout" "" "$OUT"
check_contains "midctl reload says the policy stays" "$ERR" "the previous policy stays in force"
check_contains "midctl reload prints the first error" "$ERR" "$CONF:2: invalid ttl \"soon\""
check_contains "midctl reload prints the second error" "$ERR" \
	"$CONF:3: invalid entry in sources: 10.0.0.1/8"
check_contains "midctl reload prints the third error" "$ERR" \
	"$CONF:4: invalid entry in hours: Mon-Fri 08:00-25:00"
check "the running policy stays after midctl reload" issue man
check_fails "bin stays unmanaged after the failed reload" issue bin

error_line="$CONF:3: invalid entry in sources"
logged=$(log_count "$error_line")
kill -HUP "$AGENT_PID"
check "SIGHUP with an invalid policy logs its errors" wait_for log_grew "$error_line" "$logged"
check "the agent keeps running after an invalid SIGHUP" kill -0 "$AGENT_PID"
check "the running policy stays after SIGHUP" issue man
check "a kept lease still verifies after the failed reloads" verify sys "$sys_cred"

echo "1..$TAP_COUNT"

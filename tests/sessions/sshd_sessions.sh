#!/bin/sh
# End to end: ssh sessions opened through a real sshd on 127.0.0.1, inside
# a private mount and network namespace, end with their lease. Expiry,
# revocation and midctl kill disconnect the client, and renewal keeps the
# session. max_sessions rejects a second login, and warnings reach the
# session's terminal. After expiry an ephemeral account's home and
# processes are gone, and its UID is not reissued during quarantine.
# Sessions survive kill -9 of the agent. No logind runs here, so sessions
# end by signals.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root for a private mount namespace"
	exit 0
fi
if [ -n "${MID_ASAN_LIB:-}" ]; then
	echo "1..0 # SKIP sshd cannot load a module built with AddressSanitizer"
	exit 0
fi
for tool in unshare sshpass ssh-keygen ss setpriv pgrep; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done

if [ -z "${MID_SESSIONS_INSIDE:-}" ]; then
	MID_SESSIONS_INSIDE=1 exec timeout 170 unshare -m -n --propagation private sh "$0" "$@"
fi

. "${MID_SRCDIR:?}/tests/lib.sh"
mid_paths
PORT=22023
DIR=$(mktemp -d /tmp/mid-sessions.XXXXXX)
# No logind runs in the namespace; the agent must not look for one on the
# host's system bus either.
MID_LOGIND_BUS_ADDRESS="unix:path=$DIR/no-logind"
export MID_LOGIND_BUS_ADDRESS

cleanup() {
	# Sessions a failed check left open end through the agent, so that
	# their clients exit before the directory goes.
	if [ -n "${AGENT_PID:-}" ]; then
		for id in $("$MIDCTL" --json sessions 2>/dev/null | tr '{' '\n' | json_field session); do
			"$MIDCTL" kill "$id" >/dev/null 2>&1
		done
	fi
	sshd_stop
	agent_stop
	# The ssh clients, which exit once their sessions are gone.
	wait
	if [ "$TAP_FAILED" != 0 ] || [ -n "${MID_KEEP_TEST_DIR:-}" ]; then
		echo "# logs kept in $DIR"
		sed 's/^/# agent: /' "$DIR/agent.log" 2>/dev/null | tail -60
		sed 's/^/# sshd: /' "$DIR/sshd.log" 2>/dev/null | tail -30
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

# ssh_bg NAME ACCOUNT CREDENTIAL TTY_FLAG COMMAND: logs in in the
# background and runs COMMAND; the client's output goes to $DIR/NAME.out
# and the time it exits (seconds since the Epoch) to $DIR/NAME.end.
ssh_bg() {
	(
		SSHPASS=$3 timeout 90 sshpass -e ssh -F /dev/null -p "$PORT" "$4" \
			-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o PubkeyAuthentication=no -o PreferredAuthentications=password \
			-o NumberOfPasswordPrompts=1 -o LogLevel=ERROR "$2@127.0.0.1" "$5" \
			>"$DIR/$1.out" 2>&1
		date +%s.%N >"$DIR/$1.end"
	) &
}

# json_field NAME: the value of "NAME" in the JSON on stdin.
json_field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"
}

epoch() {
	date -d "$1" +%s
}

# sessions_of LEASE: how many open sessions the agent lists for LEASE.
sessions_of() {
	"$MIDCTL" --json sessions | grep -o "\"lease\":\"$1\"" | wc -l
}

# session_entry LEASE: the JSON fields of the open session of LEASE.
session_entry() {
	"$MIDCTL" --json sessions | tr '{' '\n' | grep "\"lease\":\"$1\"" | sed 's/}.*//'
}

# wait_sessions LEASE COUNT: waits up to 10 s until LEASE has COUNT open
# sessions.
wait_sessions() {
	for _ in $(seq 100); do
		[ "$(sessions_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_end NAME SECONDS: waits until the client NAME has exited.
wait_end() {
	for _ in $(seq $(($2 * 10))); do
		[ -s "$DIR/$1.end" ] && return 0
		sleep 0.1
	done
	return 1
}

# ended_within NAME FROM MAX: the client NAME exited no earlier than FROM
# and at most MAX seconds after it.
ended_within() {
	[ -s "$DIR/$1.end" ] || return 1
	awk -v end="$(cat "$DIR/$1.end")" -v from="$2" -v max="$3" \
		'BEGIN { d = end - from; print "# " d " s after the deadline"; exit !(d >= -0.2 && d <= max) }'
}

quiet() {
	"$@" >/dev/null 2>&1
}

still_running() {
	[ ! -e "$DIR/$1.end" ]
}

echo "1..51"
ns_setup "$DIR"

# More existing accounts: for max_sessions, and for on_expiry = "warn".
for entry in mid-one:59998 mid-warn:59997; do
	name=${entry%:*} id=${entry#*:}
	echo "$name:x:$id:$id:mid test:$DIR/home/$name:/bin/sh" >>"$DIR/etc/passwd"
	echo "$name:x:$id:" >>"$DIR/etc/group"
	echo "$name:!:19000:0:99999:7:::" >>"$DIR/etc/shadow"
	mkdir -p "$DIR/home/$name"
	chown "$id:$id" "$DIR/home/$name"
done
mkdir -p "$DIR/homes" "$DIR/skel/.config" "$DIR/victim"
echo "skeleton file" >"$DIR/skel/.profile"
echo "nested" >"$DIR/skel/.config/app"
ln -s /etc/hostname "$DIR/skel/.link"
echo "not the account's" >"$DIR/victim/keep"

cat >"$DIR/mid.conf" <<EOT
accounts = (
  { name = "mid-e2e"; ttl = "10s"; max_ttl = "1h"; grace = "1s"; warn_before = ["7s", "4s"]; },
  { name = "mid-one"; ttl = "5m"; max_ttl = "1h"; max_sessions = 1; grace = "1s"; },
  { name = "mid-warn"; ttl = "10s"; max_ttl = "1h"; on_expiry = "warn"; warn_before = ["5s"]; }
);
classes = (
  { name = "eph"; prefix = "eph-"; uid_min = 64810; uid_max = 64811; group = "mid-eph";
    gid = 64810; shell = "/bin/sh"; home = "$DIR/homes"; skeleton = "$DIR/skel";
    ttl = "10s"; max_ttl = "1h"; grace = "1s"; quarantine = "1h"; }
);
EOT
chmod 600 "$DIR/mid.conf"

check "agent starts" agent_start "$DIR" "$DIR/mid.conf"
check "sshd listens on 127.0.0.1:$PORT" sshd_start "$DIR" "$PORT"

# Leases that run out together: expiry, renewal, warnings, ephemeral.
exp_json=$("$MIDCTL" --json issue mid-e2e --reason expiry)
renew_json=$("$MIDCTL" --json issue mid-e2e --reason renew)
warn_json=$("$MIDCTL" --json issue mid-e2e --ttl 12s --reason warnings)
eph_json=$("$MIDCTL" --json issue --class eph --reason ephemeral)
keep_json=$("$MIDCTL" --json issue mid-warn --reason "on_expiry warn")
exp_lease=$(echo "$exp_json" | json_field lease)
renew_lease=$(echo "$renew_json" | json_field lease)
warn_lease=$(echo "$warn_json" | json_field lease)
eph_lease=$(echo "$eph_json" | json_field lease)
eph=$(echo "$eph_json" | json_field account)
eph_uid=$(echo "$eph_json" | json_field uid)

ssh_bg exp mid-e2e "$(echo "$exp_json" | json_field credential)" -T "sleep 600"
ssh_bg renew mid-e2e "$(echo "$renew_json" | json_field credential)" -T "sleep 600"
ssh_bg warn mid-e2e "$(echo "$warn_json" | json_field credential)" -tt "sleep 600"
ssh_bg keep mid-warn "$(echo "$keep_json" | json_field credential)" -tt "sleep 600"
# The second sleep leaves the session's process tree: only the account's
# cleanup can find it.
ssh_bg eph "$eph" "$(echo "$eph_json" | json_field credential)" -T \
	"echo made >\$HOME/by-session; (setsid sleep 600 </dev/null >/dev/null 2>&1 &); exec sleep 600"

check_equal "ephemeral home is mode 700 and owned by the account" "700 $eph_uid:64810" \
	"$(stat -c '%a %u:%g' "$DIR/homes/$eph" 2>&1)"
check_equal "skeleton file is copied and owned by the account" "skeleton file $eph_uid" \
	"$(cat "$DIR/homes/$eph/.profile") $(stat -c %u "$DIR/homes/$eph/.profile")"
check_equal "nested skeleton file is copied" "nested" "$(cat "$DIR/homes/$eph/.config/app" 2>&1)"
check_equal "skeleton symlink is copied as a link owned by the account" "/etc/hostname $eph_uid" \
	"$(readlink "$DIR/homes/$eph/.link") $(stat -c %u "$DIR/homes/$eph/.link")"
# Links the account could have made: removing the home must not follow them.
ln -s "$DIR/victim" "$DIR/homes/$eph/link-dir"
ln -s "$DIR/victim/keep" "$DIR/homes/$eph/link-file"

check "session of the expiring lease is registered" wait_sessions "$exp_lease" 1
check "session of the renewed lease is registered" wait_sessions "$renew_lease" 1
check "session with a terminal is registered" wait_sessions "$warn_lease" 1
check "session of the ephemeral account is registered" wait_sessions "$eph_lease" 1
check_equal "midctl sessions shows the source address" "127.0.0.1" \
	"$("$MIDCTL" sessions | awk -v l="$exp_lease" '$3 == l { print $4 }')"
check_equal "midctl sessions shows the lease's expiry as deadline" \
	"$(echo "$exp_json" | json_field expires_at)" \
	"$(session_entry "$exp_lease" | json_field deadline)"

# Revocation, midctl kill and max_sessions, while the leases above run.
rev_json=$("$MIDCTL" --json issue mid-e2e --ttl 5m --reason revoke)
rev_lease=$(echo "$rev_json" | json_field lease)
ssh_bg rev mid-e2e "$(echo "$rev_json" | json_field credential)" -T "sleep 600"
kill_json=$("$MIDCTL" --json issue mid-e2e --ttl 5m --reason kill)
kill_lease=$(echo "$kill_json" | json_field lease)
ssh_bg kill mid-e2e "$(echo "$kill_json" | json_field credential)" -T "sleep 600"
one_json=$("$MIDCTL" --json issue mid-one --reason limit)
one_lease=$(echo "$one_json" | json_field lease)
one_cred=$(echo "$one_json" | json_field credential)
ssh_bg one mid-one "$one_cred" -T "sleep 600"

check "session to revoke is registered" wait_sessions "$rev_lease" 1
revoked_at=$(date +%s.%N)
"$MIDCTL" revoke "$rev_lease" >/dev/null
wait_end rev 5
check "revocation disconnects within 2 s" ended_within rev "$revoked_at" 2
check_equal "revoked session is no longer listed" 0 "$(sessions_of "$rev_lease")"

check "session to kill is registered" wait_sessions "$kill_lease" 1
kill_id=$(session_entry "$kill_lease" | json_field session)
check_equal "midctl kill refuses a malformed session id" 2 \
	"$("$MIDCTL" kill "not-an-id" >/dev/null 2>&1; echo $?)"
check_equal "midctl kill refuses a non-root user" 1 \
	"$(setpriv --reuid=65534 --regid=65534 --clear-groups "$MIDCTL" kill "$kill_id" 2>/dev/null; echo $?)"
check "non-root kill leaves the session running" still_running kill
check_equal "midctl kill names an unknown session" 1 \
	"$("$MIDCTL" kill 0123456789abcdef >/dev/null 2>&1; echo $?)"
killed_at=$(date +%s.%N)
check "midctl kill ends a session" quiet "$MIDCTL" kill "$kill_id" --reason "test"
wait_end kill 5
check "midctl kill disconnects within 2 s" ended_within kill "$killed_at" 2

check "first session of a max_sessions = 1 account is registered" wait_sessions "$one_lease" 1
check_equal "second session of a max_sessions = 1 account is refused" 254 \
	"$(ssh_run "$PORT" mid-one "$one_cred" echo ran >"$DIR/second.out" 2>&1; echo $?)"
check_fails "refused session does not run its command" grep -q ran "$DIR/second.out"
check "client sees the max_sessions message" grep -q "already has 1 open session" "$DIR/second.out"
check "refusal leaves the first session running" still_running one
"$MIDCTL" revoke "$one_lease" >/dev/null

# Renew before the original expiry; the session must outlive it.
"$MIDCTL" renew "$renew_lease" --ttl 30s >/dev/null

exp_end=$(epoch "$(echo "$exp_json" | json_field expires_at)")
wait_end exp 20
check "expiry disconnects within 2 s" ended_within exp "$exp_end" 2
check_equal "expired session is no longer listed" 0 "$(sessions_of "$exp_lease")"

warn_end=$(epoch "$(echo "$warn_json" | json_field expires_at)")
wait_end warn 20
check "session with a terminal ends at expiry" ended_within warn "$warn_end" 2
check "first warning reaches the terminal" grep -q "ends in [67]s" "$DIR/warn.out"
check "second warning reaches the terminal" grep -q "ends in [34]s" "$DIR/warn.out"
check "warning names the lease" grep -q "Lease $warn_lease of account mid-e2e" "$DIR/warn.out"

eph_end=$(epoch "$(echo "$eph_json" | json_field expires_at)")
wait_end eph 20
check "ephemeral session ends at expiry" ended_within eph "$eph_end" 2
home_gone() {
	for _ in $(seq 80); do
		[ ! -e "$DIR/homes/$eph" ] && return 0
		sleep 0.1
	done
	return 1
}
check "ephemeral home is removed after expiry" home_gone
check_equal "home removal does not follow symlinks" "not the account's" "$(cat "$DIR/victim/keep" 2>&1)"
# processes_of UID: the processes of UID that are not zombies.
processes_of() {
	ps -o pid=,stat=,args= -u "$1" | awk '$2 !~ /^Z/'
}
check_equal "no process of the ephemeral UID survives" "" "$(processes_of "$eph_uid")"
check_fails "expired ephemeral account is gone from NSS" getent passwd "$eph"

next_json=$("$MIDCTL" --json issue --class eph --ttl 5m --reason quarantine)
next_uid=$(echo "$next_json" | json_field uid)
check_equal "quarantined UID is skipped" "$((eph_uid == 64810 ? 64811 : 64810))" "$next_uid"
check_fails "class with only a quarantined UID left refuses to issue" \
	quiet "$MIDCTL" issue --class eph --ttl 5m
"$MIDCTL" revoke "$(echo "$next_json" | json_field lease)" >/dev/null

sleep_until() {
	now=$(date +%s.%N)
	awk -v t="$1" -v n="$now" 'BEGIN { exit !(n < t) }' && sleep "$(awk -v t="$1" -v n="$now" 'BEGIN { print t - n }')"
}
sleep_until "$((exp_end + 3))"
check "renewed session outlives the original expiry" still_running renew
check "on_expiry = warn keeps the session after expiry" still_running keep
check "on_expiry = warn warns before expiry" grep -q "ends in [45]s" "$DIR/keep.out"
check "on_expiry = warn tells the session its lease ended" grep -q "has ended" "$DIR/keep.out"
keep_id=$(session_entry "$(echo "$keep_json" | json_field lease)" | json_field session)
check "on_expiry = warn session is still listed" test -n "$keep_id"
killed_at=$(date +%s.%N)
"$MIDCTL" kill "$keep_id" >/dev/null
wait_end keep 5
check "midctl kill ends a session that outlived its lease" ended_within keep "$killed_at" 2
"$MIDCTL" revoke "$renew_lease" >/dev/null
wait_end renew 5

# Restart: one lease expires while the agent is down, another lives on.
down_json=$("$MIDCTL" --json issue mid-e2e --ttl 4s --reason restart)
down_lease=$(echo "$down_json" | json_field lease)
ssh_bg down mid-e2e "$(echo "$down_json" | json_field credential)" -T "sleep 600"
live_json=$("$MIDCTL" --json issue mid-e2e --ttl 5m --reason restart)
live_lease=$(echo "$live_json" | json_field lease)
ssh_bg live mid-e2e "$(echo "$live_json" | json_field credential)" -T "sleep 600"
wait_sessions "$down_lease" 1
wait_sessions "$live_lease" 1
before=$(session_entry "$live_lease")

kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=
sleep_until "$(($(epoch "$(echo "$down_json" | json_field expires_at)") + 1))"
check "session stays up while the agent is down" still_running down
restarted_at=$(date +%s.%N)
check "agent restarts on the same state" agent_start "$DIR" "$DIR/mid.conf"
wait_end down 5
check "lease that expired while the agent was down ends its session" \
	ended_within down "$restarted_at" 2
check_equal "live session and its deadline survive kill -9" "$before" \
	"$(session_entry "$live_lease")"
revoked_at=$(date +%s.%N)
"$MIDCTL" revoke "$live_lease" >/dev/null
wait_end live 5
check "restarted agent still ends the surviving session" ended_within live "$revoked_at" 2

[ "$TAP_FAILED" = 0 ]

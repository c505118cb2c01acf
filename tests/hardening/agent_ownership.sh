#!/bin/sh
# mid-agentd must not start on a policy file, state directory, runtime
# directory or socket directory that someone other than its own user could
# write. Each such setup must exit with status 1 and an error naming the
# path. The same setup with safe modes is the control and must start.
# Prints TAP.
set -u

. "${MID_SRCDIR:?MID_SRCDIR must name the source directory}/tests/lib.sh"
mid_paths

ROOT=$(mktemp -d /tmp/mid-hardening-ownership.XXXXXX) || exit 1
cleanup() {
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	if [ "$TAP_FAILED" != 0 ] || [ -n "${MID_KEEP_TEST_DIR:-}" ]; then
		echo "# files kept in $ROOT"
	else
		rm -rf "$ROOT"
	fi
}
trap cleanup EXIT

# setup NAME: creates a fresh, safe layout under $ROOT/NAME and sets D to it.
setup() {
	D=$ROOT/$1
	mkdir -m 700 "$D" "$D/state" "$D/run" "$D/sock"
	echo 'accounts = ( { name = "nobody"; } );' >"$D/mid.conf"
	chmod 600 "$D/mid.conf"
}

# agent_run: starts the agent on $D and waits up to 5 s for it to exit or
# to reply to a status request. Sets STATUS (the exit status, or
# "running") and leaves its stderr in $D/err.
agent_run() {
	MID_LOG_STDERR=1 "$AGENTD" --config "$D/mid.conf" --socket "$D/sock/agent.sock" \
		--state-dir "$D/state" --runtime-dir "$D/run" 2>"$D/err" &
	AGENT_PID=$!
	STATUS=running
	for _ in $(seq 100); do
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			wait "$AGENT_PID"
			STATUS=$?
			AGENT_PID=
			return
		fi
		if "$MIDCTL" --socket "$D/sock/agent.sock" status >/dev/null 2>&1; then
			return
		fi
		sleep 0.05
	done
}

agent_stop() {
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" && wait "$AGENT_PID"
	AGENT_PID=
}

# rejected NAME PATH: one TAP line for the agent exiting with status 1 and
# an error that names PATH.
rejected() {
	agent_run
	if [ "$STATUS" = 1 ] && grep -qF "$2" "$D/err"; then
		tap_ok "agent rejects $1"
	else
		tap_not_ok "agent rejects $1"
		echo "#   expected exit status 1 and an error naming $2; got status $STATUS and:"
		sed 's/^/#   /' "$D/err"
		agent_stop
	fi
}

if [ "$(id -u)" = 0 ]; then
	echo "1..16"
else
	echo "1..12"
fi

setup control
agent_run
check_equal "agent starts with safe modes" "running" "$STATUS"
agent_stop

setup config-group-writable
chmod 620 "$D/mid.conf"
rejected "a group-writable policy file" "$D/mid.conf"

setup config-world-writable
chmod 606 "$D/mid.conf"
rejected "a world-writable policy file" "$D/mid.conf"

setup config-directory
rm "$D/mid.conf"
mkdir -m 700 "$D/mid.conf"
rejected "a directory as policy file" "$D/mid.conf"

setup state-group-writable
chmod 770 "$D/state"
rejected "a group-writable state directory" "$D/state"

setup state-world-writable
chmod 777 "$D/state"
rejected "a world-writable state directory" "$D/state"

setup state-symlink
mkdir -m 777 "$D/open"
rmdir "$D/state"
ln -s "$D/open" "$D/state"
rejected "a state directory linked to a world-writable one" "$D/state"

setup runtime-world-writable
chmod 777 "$D/run"
rejected "a world-writable runtime directory" "$D/run"

setup socket-group-writable
chmod 770 "$D/sock"
rejected "a group-writable socket directory" "$D/sock"

setup socket-sticky
chmod 1777 "$D/sock"
rejected "a sticky world-writable socket directory" "$D/sock"

setup host-key-world-writable
agent_run
agent_stop
chmod 666 "$D/state/host.key"
rejected "a world-writable host key" "$D/state/host.key"

# The control run removed its socket when it stopped, and no rejected run
# may have bound one.
check_equal "no socket left behind" "" "$(find "$ROOT" -name agent.sock)"

if [ "$(id -u)" = 0 ]; then
	setup config-other-owner
	chown nobody "$D/mid.conf"
	rejected "a policy file owned by another user" "$D/mid.conf"

	setup state-other-owner
	chown nobody "$D/state"
	rejected "a state directory owned by another user" "$D/state"

	setup runtime-other-owner
	chown nobody "$D/run"
	rejected "a runtime directory owned by another user" "$D/run"

	setup socket-other-owner
	chown nobody "$D/sock"
	rejected "a socket directory owned by another user" "$D/sock"
fi

[ "$TAP_FAILED" = 0 ]

#!/bin/sh
# End to end: credentials from midctl log an existing account and an
# ephemeral account in through a real sshd on 127.0.0.1, inside a private
# mount and network namespace; wrong, revoked and expired credentials are
# refused, and the ephemeral account disappears from NSS at expiry.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root for a private mount namespace"
	exit 0
fi
if [ -n "${MID_ASAN_LIB:-}" ]; then
	echo "1..0 # SKIP sshd cannot load a module built with AddressSanitizer"
	exit 0
fi
for tool in unshare sshpass ssh-keygen ss; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is not installed"
		exit 0
	fi
done

if [ -z "${MID_E2E_INSIDE:-}" ]; then
	MID_E2E_INSIDE=1 exec timeout 300 unshare -m -n --propagation private sh "$0" "$@"
fi

. "${MID_SRCDIR:?}/tests/lib.sh"
mid_paths
PORT=22022
DIR=$(mktemp -d /tmp/mid-e2e.XXXXXX)
cleanup() {
	sshd_stop
	agent_stop
	if [ "$TAP_FAILED" != 0 ] || [ -n "${MID_KEEP_TEST_DIR:-}" ]; then
		echo "# logs kept in $DIR"
		sed 's/^/# agent: /' "$DIR/agent.log" 2>/dev/null | tail -30
		sed 's/^/# sshd: /' "$DIR/sshd.log" 2>/dev/null | tail -30
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

echo "1..14"
ns_setup "$DIR"
cat >"$DIR/mid.conf" <<EOT
accounts = ( { name = "mid-e2e"; ttl = "5m"; max_ttl = "1h"; } );
classes = ( { name = "job"; prefix = "job-"; uid_min = 62000; uid_max = 62999;
              group = "mid-job"; gid = 62000; shell = "/bin/sh"; home = "$DIR/homes"; ttl = "5m"; } );
EOT
chmod 600 "$DIR/mid.conf"
mkdir -m 755 "$DIR/homes"

check "agent starts on the default socket" agent_start "$DIR" "$DIR/mid.conf"
check "sshd listens on 127.0.0.1:$PORT" sshd_start "$DIR" "$PORT"

cred=$("$MIDCTL" --field credential issue mid-e2e --reason "e2e test")
check_equal "existing account logs in with a credential" "mid-e2e" \
	"$(ssh_run $PORT mid-e2e "$cred" id -un 2>>"$DIR/ssh.log")"

json=$("$MIDCTL" --json issue --class job --reason "e2e ephemeral")
eph=$(echo "$json" | sed -n 's/.*"account":"\([^"]*\)".*/\1/p')
eph_cred=$(echo "$json" | sed -n 's/.*"credential":"\([^"]*\)".*/\1/p')
eph_uid=$(echo "$json" | sed -n 's/.*"uid":\([0-9]*\).*/\1/p')
check_equal "ephemeral account resolves by name" "$eph:x:$eph_uid:62000:mid ephemeral account:$DIR/homes/$eph:/bin/sh" \
	"$(getent passwd "$eph")"
check_equal "ephemeral account resolves by UID" "$eph" "$(getent passwd "$eph_uid" | cut -d: -f1)"
check_equal "ephemeral primary group resolves" "mid-job:x:62000:" "$(getent group mid-job)"
check_equal "ephemeral account logs in with its credential" "$eph $eph_uid" \
	"$(ssh_run $PORT "$eph" "$eph_cred" 'echo $(id -un) $(id -u)' 2>>"$DIR/ssh.log")"

check_fails "wrong credential is refused" ssh_run $PORT mid-e2e "${cred%?}x" true 2>>"$DIR/ssh.log"
check_fails "credential of another account is refused" ssh_run $PORT mid-e2e "$eph_cred" true 2>>"$DIR/ssh.log"

lease=$("$MIDCTL" --field lease issue mid-e2e)
rcred=$("$MIDCTL" --field credential issue mid-e2e)
rlease=$(echo "$rcred" | cut -d_ -f2)
"$MIDCTL" revoke "$rlease" >/dev/null
check_fails "revoked credential is refused" ssh_run $PORT mid-e2e "$rcred" true 2>>"$DIR/ssh.log"
"$MIDCTL" revoke "$lease" >/dev/null

short=$("$MIDCTL" --json issue mid-e2e --ttl 2s)
scred=$(echo "$short" | sed -n 's/.*"credential":"\([^"]*\)".*/\1/p')
sjson=$("$MIDCTL" --json issue --class job --ttl 2s)
seph=$(echo "$sjson" | sed -n 's/.*"account":"\([^"]*\)".*/\1/p')
check "short ephemeral account resolves before expiry" getent passwd "$seph"
sleep 3
check_fails "expired credential is refused" ssh_run $PORT mid-e2e "$scred" true 2>>"$DIR/ssh.log"
check_fails "expired ephemeral account is gone from getent passwd" getent passwd "$seph"
check "live ephemeral account still resolves" getent passwd "$eph"

[ "$TAP_FAILED" = 0 ]

#!/bin/sh
# The mid demo: builds mid, starts mid-agentd on a private socket and
# state directory, issues just-in-time credentials for an existing account
# and for an ephemeral account, resolves the ephemeral account through the
# NSS module, logs in through a real PAM stack (and, as root, through a
# real sshd in a private namespace), and shows the login refused once the
# lease has expired. The host's /etc is never changed.
set -eu

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Installing build dependencies (Debian packages)"
tools/install-deps.sh

say "Building mid"
if [ ! -x build-demo/agentd/mid-agentd ]; then
	autoreconf -fi >/dev/null 2>&1
	mkdir -p build-demo
	(cd build-demo && ../configure -q && make -j2 -s >/dev/null)
fi
export MID_BUILDDIR="$top/build-demo" MID_SRCDIR="$top"
. "$top/tests/lib.sh"
mid_paths

DIR=$(mktemp -d /tmp/mid-demo.XXXXXX)
SOCK=$DIR/agent.sock
CACHE=$DIR/run/nss.cache
cleanup() {
	agent_stop_demo
	rm -rf "$DIR"
}
agent_stop_demo() {
	[ -n "${DEMO_AGENT:-}" ] && kill "$DEMO_AGENT" 2>/dev/null && wait "$DEMO_AGENT" 2>/dev/null
	DEMO_AGENT=
}
trap cleanup EXIT

say "Policy: nobody may get credentials; class 'ci' makes ephemeral accounts"
cat >"$DIR/mid.conf" <<EOT
accounts = (
  { name = "nobody"; ttl = "10m"; max_ttl = "1h"; }
);
classes = (
  { name = "ci"; prefix = "ci-"; uid_min = 60000; uid_max = 60999;
    group = "mid-ci"; gid = 60000; shell = "/bin/sh"; home = "$DIR/homes"; ttl = "10m"; }
);
EOT
chmod 600 "$DIR/mid.conf"
mkdir -m 755 "$DIR/homes"
cat "$DIR/mid.conf"
run "$AGENTD" --check-config --config "$DIR/mid.conf"

say "Starting mid-agentd on a private socket"
mkdir -m 700 "$DIR/state"
"$AGENTD" --config "$DIR/mid.conf" --socket "$SOCK" --state-dir "$DIR/state" \
	--runtime-dir "$DIR/run" 2>"$DIR/agent.log" &
DEMO_AGENT=$!
for _ in $(seq 100); do "$MIDCTL" --socket "$SOCK" status >/dev/null 2>&1 && break; sleep 0.05; done
run "$MIDCTL" --socket "$SOCK" status

say "Automation asks for a credential for the existing account 'nobody'"
run "$MIDCTL" --socket "$SOCK" --json issue nobody --ttl 10m --reason "nightly backup"
CRED=$("$MIDCTL" --socket "$SOCK" --field credential issue nobody --reason "demo login")

say "...and for a new ephemeral account of class 'ci'"
JSON=$("$MIDCTL" --socket "$SOCK" --json issue --class ci --ttl 10m --reason "CI job 42")
echo "$JSON"
EPH=$(echo "$JSON" | sed -n 's/.*"account":"\([^"]*\)".*/\1/p')
EPH_CRED=$(echo "$JSON" | sed -n 's/.*"credential":"\([^"]*\)".*/\1/p')

getent_mid() {
	: >"$DIR/passwd.empty"
	: >"$DIR/group.empty"
	env LD_PRELOAD=libnss_wrapper.so NSS_WRAPPER_PASSWD="$DIR/passwd.empty" \
		NSS_WRAPPER_GROUP="$DIR/group.empty" NSS_WRAPPER_MODULE_SO_PATH="$NSS_MODULE" \
		NSS_WRAPPER_MODULE_FN_PREFIX=mid MID_NSS_CACHE="$CACHE" getent "$@"
}

say "The ephemeral account resolves through libnss_mid.so.2 (nss_wrapper, no /etc change)"
echo "\$ getent passwd $EPH"
getent_mid passwd "$EPH"
echo "\$ getent group mid-ci"
getent_mid group mid-ci

mkdir -p "$DIR/pam.d"
echo "auth required pam_deny.so" >"$DIR/pam.d/other"
cat >"$DIR/pam.d/mid-demo" <<EOT
auth     required $PAM_MODULE socket=$SOCK cache=$CACHE
account  required $PAM_MODULE socket=$SOCK cache=$CACHE
session  required $PAM_MODULE socket=$SOCK cache=$CACHE
EOT

pam_login() {
	echo "\$ pamtester mid-demo $1 authenticate acct_mgmt open_session close_session"
	echo "$2" | env LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$DIR/pam.d" \
		pamtester mid-demo "$1" authenticate acct_mgmt open_session close_session 2>&1 |
		grep -v '^$' || true
}

say "Logging in through a real PAM stack (pam_wrapper + pamtester) with the credential"
pam_login nobody "$CRED"
pam_login "$EPH" "$EPH_CRED"

say "A wrong credential is refused"
pam_login nobody "mid1_0000000000000000_$(printf '%064d' 0)_00000000"

say "A credential with a 3-second lease, refused once the lease has expired"
SHORT=$("$MIDCTL" --socket "$SOCK" --field credential issue nobody --ttl 3s --reason "short")
SJSON=$("$MIDCTL" --socket "$SOCK" --json issue --class ci --ttl 3s)
SEPH=$(echo "$SJSON" | sed -n 's/.*"account":"\([^"]*\)".*/\1/p')
pam_login nobody "$SHORT"
echo "\$ getent passwd $SEPH"
getent_mid passwd "$SEPH" || true
echo "(waiting 4 seconds)"
sleep 4
pam_login nobody "$SHORT"
echo "\$ getent passwd $SEPH   # gone: its lease has expired"
getent_mid passwd "$SEPH" || echo "(no such account)"

say "Leases and what the agent logged"
run "$MIDCTL" --socket "$SOCK" list
sed 's/^/  /' "$DIR/agent.log" | tail -12
agent_stop_demo

if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	say "Root: a real sshd login on 127.0.0.1 inside a private mount and network namespace"
	timeout 120 unshare -m -n --propagation private sh -c '
		set -eu
		. "$MID_SRCDIR/tests/lib.sh"
		mid_paths
		D=$(mktemp -d /tmp/mid-demo-ssh.XXXXXX)
		trap "sshd_stop; agent_stop; rm -rf $D" EXIT
		ns_setup "$D"
		printf "accounts = ( { name = \"mid-e2e\"; ttl = \"10m\"; } );\n" >"$D/mid.conf"
		chmod 600 "$D/mid.conf"
		agent_start "$D" "$D/mid.conf"
		sshd_start "$D" 22022
		echo "\$ CRED=\$(midctl --field credential issue mid-e2e --ttl 5s)"
		CRED=$("$MIDCTL" --field credential issue mid-e2e --ttl 5s)
		echo "\$ sshpass -e ssh mid-e2e@127.0.0.1 id    # the credential is the password"
		ssh_run 22022 mid-e2e "$CRED" id
		echo "(waiting 6 seconds for the lease to expire)"
		sleep 6
		echo "\$ sshpass -e ssh mid-e2e@127.0.0.1 id"
		ssh_run 22022 mid-e2e "$CRED" id || echo "login refused: the lease has expired"
	'
fi

say "Demo finished"

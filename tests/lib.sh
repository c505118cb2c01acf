# Shell helpers for mid's end-to-end tests and demo: TAP output, a private
# mount and network namespace with mid wired into NSS and PAM, a real
# mid-agentd and a real sshd on 127.0.0.1. Source it; it defines
# functions only.

TAP_COUNT=0
TAP_FAILED=0

tap_ok() {
	TAP_COUNT=$((TAP_COUNT + 1))
	echo "ok $TAP_COUNT - $1"
}

tap_not_ok() {
	TAP_COUNT=$((TAP_COUNT + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_COUNT - $1"
}

# check NAME COMMAND...: one TAP line for whether COMMAND succeeds.
check() {
	name=$1
	shift
	if "$@"; then tap_ok "$name"; else tap_not_ok "$name"; fi
}

# check_fails NAME COMMAND...: one TAP line for whether COMMAND fails.
check_fails() {
	name=$1
	shift
	if "$@"; then tap_not_ok "$name"; else tap_ok "$name"; fi
}

# check_equal NAME EXPECTED ACTUAL
check_equal() {
	if [ "$2" = "$3" ]; then
		tap_ok "$1"
	else
		tap_not_ok "$1"
		echo "#   expected: '$2'"
		echo "#   actual:   '$3'"
	fi
}

# mid_paths: sets BUILD, SRC and the paths of the built programs.
mid_paths() {
	BUILD=${MID_BUILDDIR:?MID_BUILDDIR must name the build directory}
	SRC=${MID_SRCDIR:-$BUILD/..}
	AGENTD=$BUILD/agentd/mid-agentd
	MIDCTL=$BUILD/midctl/midctl
	PAM_MODULE=$BUILD/pam_mid/.libs/pam_mid.so
	NSS_MODULE=$BUILD/nss_mid/.libs/libnss_mid.so.2
}

# ns_setup DIR: inside a private mount namespace (the caller's unshare -m
# -n), wire mid into this namespace's /etc and /run only:
#   - loopback up;
#   - /run on a fresh tmpfs with /run/sshd and /run/mid;
#   - /etc/nsswitch.conf with "files mid" for passwd and group;
#   - libnss_mid.so.2 added to the library directory through an overlay;
#   - /etc/passwd, /etc/group and /etc/shadow copies with the test
#     account mid-e2e (UID 59999, shell /bin/sh);
#   - /etc/pam.d/sshd with pam_mid alone, by absolute path.
ns_setup() {
	dir=$1
	libdir=$(dirname "$(readlink -f /lib/x86_64-linux-gnu/libc.so.6)")

	ip link set lo up
	mount -t tmpfs -o mode=755 tmpfs /run
	mkdir -m 755 /run/sshd /run/mid

	mkdir -p "$dir/nsslib" "$dir/etc" "$dir/home/mid-e2e"
	cp "$NSS_MODULE" "$dir/nsslib/libnss_mid.so.2"
	mount -t overlay overlay -o "lowerdir=$dir/nsslib:$libdir" "$libdir"

	sed -e 's/^passwd:.*/passwd:         files mid/' -e 's/^group:.*/group:          files mid/' \
		/etc/nsswitch.conf >"$dir/etc/nsswitch.conf"
	mount --bind "$dir/etc/nsswitch.conf" /etc/nsswitch.conf

	cp /etc/passwd "$dir/etc/passwd"
	cp /etc/group "$dir/etc/group"
	cp /etc/shadow "$dir/etc/shadow"
	echo "mid-e2e:x:59999:59999:mid end-to-end test:$dir/home/mid-e2e:/bin/sh" >>"$dir/etc/passwd"
	echo "mid-e2e:x:59999:" >>"$dir/etc/group"
	echo "mid-e2e:!:19000:0:99999:7:::" >>"$dir/etc/shadow"
	chown 59999:59999 "$dir/home/mid-e2e"
	chmod 0711 "$dir"
	mount --bind "$dir/etc/passwd" /etc/passwd
	mount --bind "$dir/etc/group" /etc/group
	mount --bind "$dir/etc/shadow" /etc/shadow

	cat >"$dir/etc/pam-sshd" <<EOT
auth     required $PAM_MODULE
account  required $PAM_MODULE
session  required $PAM_MODULE
EOT
	mount --bind "$dir/etc/pam-sshd" /etc/pam.d/sshd
}

# agent_start DIR CONFIG: runs mid-agentd on the default socket and
# runtime dir (inside the namespace), with state under DIR.
agent_start() {
	mkdir -p -m 700 "$1/state"
	"$AGENTD" --config "$2" --state-dir "$1/state" >>"$1/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 100); do
		"$MIDCTL" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

agent_stop() {
	[ -n "${AGENT_PID:-}" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

# sshd_start DIR PORT: a real sshd on 127.0.0.1:PORT with password
# authentication through PAM.
sshd_start() {
	ssh-keygen -q -t ed25519 -N '' -f "$1/hostkey"
	cat >"$1/sshd_config" <<EOT
Port $2
ListenAddress 127.0.0.1
HostKey $1/hostkey
PidFile $1/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication yes
PubkeyAuthentication no
PermitRootLogin no
AuthorizedKeysFile none
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
EOT
	timeout 600 /usr/sbin/sshd -D -e -f "$1/sshd_config" 2>>"$1/sshd.log" &
	SSHD_PID=$!
	for _ in $(seq 100); do
		ss -ltn 2>/dev/null | grep -q "127.0.0.1:$2 " && return 0
		sleep 0.05
	done
	return 1
}

sshd_stop() {
	[ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	SSHD_PID=
}

# ssh_run PORT ACCOUNT CREDENTIAL COMMAND...: logs in with the credential
# as the password and runs COMMAND; prints its output.
ssh_run() {
	port=$1 account=$2 credential=$3
	shift 3
	SSHPASS=$credential timeout 20 sshpass -e ssh -F /dev/null -p "$port" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o PubkeyAuthentication=no -o PreferredAuthentications=password \
		-o NumberOfPasswordPrompts=1 -o LogLevel=ERROR \
		"$account@127.0.0.1" "$@"
}

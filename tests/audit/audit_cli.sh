#!/bin/sh
# Tests of midctl audit, audit verify, audit export and report against a
# real mid-agentd: output formats, filters, bad input, access, a signed
# export checked offline, and tampering with copies of the state database.
# Needs root (the agent checks ownership, one check runs as UID 65534) and
# the sqlite3 and jq commands; skips without them.
set -u

. "${MID_SRCDIR:?MID_SRCDIR must name the source directory}/tests/lib.sh"
mid_paths

if [ "$(id -u)" != 0 ] || ! command -v sqlite3 >/dev/null || ! command -v jq >/dev/null; then
	echo "1..0 # SKIP needs root, sqlite3 and jq"
	exit 0
fi

dir=$(mktemp -d /tmp/mid-audit-cli.XXXXXX)
chmod 0711 "$dir"
AGENT_PIDS=

cleanup() {
	for pid in $AGENT_PIDS; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ -n "${MID_KEEP_TEST_DIR:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/mid.conf" <<'EOF'
lockout = { failures = 0; };
accounts = (
	{ name = "daemon"; ttl = "1h"; max_ttl = "2h"; },
	{ name = "bin"; ttl = "1h"; }
);
EOF
chmod 0600 "$dir/mid.conf"

# start_agent STATE_DIR SOCKET: runs an agent and waits until it replies to status.
start_agent() {
	mkdir -p -m 0700 "$1" "$dir/run"
	MID_LOG_STDERR=1 "$AGENTD" --config "$dir/mid.conf" --socket "$2" --state-dir "$1" \
		--runtime-dir "$dir/run" >>"$dir/agent.log" 2>&1 &
	LAST_AGENT=$!
	AGENT_PIDS="$AGENT_PIDS $LAST_AGENT"
	for _ in $(seq 100); do
		"$MIDCTL" --socket "$2" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

stop_agent() {
	kill "$1" && wait "$1" 2>/dev/null
	return 0
}

sock=$dir/agent.sock
M="$MIDCTL --socket $sock"
start_agent "$dir/state" "$sock" || { echo "Bail out! the agent did not start"; exit 1; }
main_agent=$LAST_AGENT

first=$($M --field lease issue daemon --reason "first credential")
$M issue daemon --reason "second
line" >/dev/null
$M revoke "$first" --reason "done" >/dev/null

# ---- listing ----
out=$($M audit)
check_equal "audit prints a header and 3 records" 4 "$(printf '%s\n' "$out" | wc -l)"
check "audit text shows the revoke" sh -c "printf '%s\n' \"\$1\" | grep -q \"^3 .* revoke .*daemon .*$first\"" _ "$out"
check "audit text escapes a newline in a reason" sh -c "printf '%s\n' \"\$1\" | grep -q 'second.x0aline'" _ "$out"

json=$($M --json audit)
check_equal "audit --json prints one line per record" 3 "$(printf '%s\n' "$json" | wc -l)"
check "every --json line parses as an object with a seq" \
	sh -c "printf '%s\n' \"\$1\" | jq -e -s 'length == 3 and all(.[]; .seq > 0)' >/dev/null" _ "$json"
check_equal "audit --json carries the event" "issue issue revoke" \
	"$(printf '%s\n' "$json" | jq -r .event | tr '\n' ' ' | sed 's/ $//')"
check "audit --json hash is 64 hex digits" \
	sh -c "printf '%s\n' \"\$1\" | jq -e -s 'all(.[]; .hash | test(\"^[0-9a-f]{64}\$\"))' >/dev/null" _ "$json"

check_equal "audit --account bin finds nothing" 1 "$($M audit --account bin | wc -l)"
check_equal "audit --account daemon finds 3" 3 "$($M --json audit --account daemon | wc -l)"
check_equal "audit --since 1h finds all" 3 "$($M --json audit --since 1h | wc -l)"
check_equal "audit --until 2000-01-01 finds none" 0 "$($M --json audit --until 2000-01-01 | wc -l)"

$M audit --since yesterday-ish >/dev/null 2>"$dir/err"
check_equal "audit --since with a bad time exits 2" 2 $?
check "bad --since names the option" grep -q 'invalid --since "yesterday-ish"' "$dir/err"
$M audit --account 'bad name' >/dev/null 2>&1
check_equal "audit --account with a bad name exits 2" 2 $?
$M audit --since 2026-01-02 --until 2026-01-01 >/dev/null 2>&1
check_equal "audit with since after until exits 2" 2 $?
$M audit --bogus >/dev/null 2>&1
check_equal "audit with an unknown option exits 2" 2 $?
$M audit verify --key 00 >/dev/null 2>&1
check_equal "audit verify --key without --file exits 2" 2 $?

setpriv --reuid=65534 --regid=65534 --clear-groups $M audit >/dev/null 2>"$dir/err"
check_equal "audit as UID 65534 exits 1" 1 $?
check "audit as UID 65534 is refused for not being root" grep -q "only root" "$dir/err"

# ---- online verification ----
out=$($M audit verify)
check_equal "audit verify exits 0 on an intact log" 0 $?
check "audit verify reports the records checked" sh -c "printf '%s\n' \"\$1\" | grep -q 'Checked 3 audit records, seq 1 to 3'" _ "$out"

# ---- export and offline verification ----
export_file=$dir/export.jsonl
out=$($M audit export --to "$export_file")
check_equal "audit export exits 0" 0 $?
check "audit export names the public key" sh -c "printf '%s\n' \"\$1\" | grep -q \"public key $(cat "$dir/state/audit-sign.pub")\"" _ "$out"
check_equal "export file has mode 0600" 600 "$(stat -c %a "$export_file")"
check_equal "export file has 3 records and a signature line" 4 "$(wc -l <"$export_file")"
check "export ends with the signature line" sh -c "tail -n 1 '$export_file' | jq -e '.signature and .public_key and .records == 3' >/dev/null"

cp "$export_file" "$dir/before"
$M audit export --to "$export_file" >/dev/null 2>"$dir/err"
check_equal "export onto an existing file exits 1" 1 $?
check "export onto an existing file says to choose a new name" grep -q "choose a new file name" "$dir/err"
check "export onto an existing file leaves it unchanged" cmp -s "$export_file" "$dir/before"
$M audit export >/dev/null 2>&1
check_equal "audit export without --to exits 2" 2 $?

out=$($M audit verify --file "$export_file")
check_equal "verify --file exits 0 on an untouched export" 0 $?
check "verify --file reports an intact chain" sh -c "printf '%s\n' \"\$1\" | grep -q '3 records, seq 1 to 3: the chain is intact'" _ "$out"
check "verify --file reports a valid signature" sh -c "printf '%s\n' \"\$1\" | grep -q 'signature valid'" _ "$out"
$M audit verify --file "$export_file" --key "$(cat "$dir/state/audit-sign.pub")" >/dev/null
check_equal "verify --file with the agent's key exits 0" 0 $?

other_key=$(printf 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
$M audit verify --file "$export_file" --key "$other_key" >"$dir/out" 2>&1
check_equal "verify --file with another key exits 1" 1 $?
check "verify --file with another key says the signature does not verify" grep -q "does not verify" "$dir/out"
$M audit verify --file "$export_file" --key nothex >/dev/null 2>&1
check_equal "verify --file with a malformed key exits 2" 2 $?
$M audit verify --file "$dir/missing.jsonl" >/dev/null 2>&1
check_equal "verify --file on a missing file exits 1" 1 $?

sed '2s/"peer_uid":0/"peer_uid":7/' "$export_file" >"$dir/edited.jsonl"
$M audit verify --file "$dir/edited.jsonl" >"$dir/out" 2>&1
check_equal "verify --file on an edited export exits 1" 1 $?
check "edited export names record 2 as edited" grep -q "first broken record: seq 2 (edited)" "$dir/out"
check "edited export fails its signature" grep -q "signature invalid" "$dir/out"

sed '2d' "$export_file" >"$dir/deleted.jsonl"
$M audit verify --file "$dir/deleted.jsonl" >"$dir/out" 2>&1
check_equal "verify --file on an export without record 2 exits 1" 1 $?
check "export without record 2 names it deleted" grep -q "seq 2 (deleted): record 2 is missing" "$dir/out"

awk 'NR == 2 { held = $0; next } NR == 3 { print; print held; next } { print }' \
	"$export_file" >"$dir/swapped.jsonl"
$M audit verify --file "$dir/swapped.jsonl" >"$dir/out" 2>&1
check_equal "verify --file on reordered records exits 1" 1 $?
check "reordered export is named reordered" grep -q "(reordered)" "$dir/out"

head -n 3 "$export_file" >"$dir/truncated.jsonl"
$M audit verify --file "$dir/truncated.jsonl" >"$dir/out" 2>&1
check_equal "verify --file on an export without its signature exits 1" 1 $?
check "export without its signature is named truncated" grep -q "not a signature line" "$dir/out"

# ---- report ----
out=$($M report)
check_equal "report exits 0" 0 $?
check "report counts issues per account" sh -c "printf '%s\n' \"\$1\" | grep -Eq '^ +2  daemon\$'" _ "$out"
check "report lists the requester" sh -c "printf '%s\n' \"\$1\" | grep -q 'root (uid 0)'" _ "$out"
json=$($M --json report)
check "report --json lists bin as never used" sh -c "printf '%s\n' \"\$1\" | jq -e '.policy_accounts_unused == [\"bin\"]' >/dev/null" _ "$json"
check "report --json counts the revocation" sh -c "printf '%s\n' \"\$1\" | jq -e '.revoked == 1' >/dev/null" _ "$json"
check_equal "report --since in the future counts nothing" 0 \
	"$($M --json report --since 2999-01-01 2>/dev/null | jq .records)"
$M report --since never >/dev/null 2>&1
check_equal "report with a bad --since exits 2" 2 $?

# ---- tampering with copies of the stopped agent's database ----
stop_agent "$main_agent"
for case in edited deleted; do
	cp -a "$dir/state" "$dir/state-$case"
done
sqlite3 "$dir/state-edited/state.db" "UPDATE audit SET detail = 'forged' WHERE seq = 2"
sqlite3 "$dir/state-deleted/state.db" "DELETE FROM audit WHERE seq = 2"

for case in edited deleted; do
	start_agent "$dir/state-$case" "$dir/$case.sock"
	"$MIDCTL" --socket "$dir/$case.sock" audit verify >"$dir/out" 2>&1
	check_equal "audit verify on a database with record 2 $case exits 1" 1 $?
	check "audit verify names record 2 as $case" grep -q "First broken record: seq 2 ($case)" "$dir/out"
	stop_agent "$LAST_AGENT"
done

start_agent "$dir/state" "$sock"
$M audit verify >/dev/null
check_equal "the untouched database still verifies" 0 $?

echo "1..$TAP_COUNT"
[ "$TAP_FAILED" = 0 ]

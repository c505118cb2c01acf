/* Tests of the audit requests against a real mid-agentd: listing, access,
 * signing, verification after tampering with the stopped agent's database,
 * retention, and escaping of request text in the log and the audit log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static const char config[] = "accounts = (\n"
			     "  { name = \"daemon\"; ttl = \"1h\"; max_ttl = \"2h\"; },\n"
			     "  { name = \"bin\"; ttl = \"1h\"; max_uses = 1; }\n"
			     ");\n";

static const char config_retention[] = "audit_retention = 1;\n"
				       "accounts = ( { name = \"daemon\"; ttl = \"1h\"; } );\n";

static int setup(void **state)
{
	struct harness *h = calloc(1, sizeof(*h));

	if (!h || harness_start(h, NULL, config) < 0) {
		free(h);
		return -1;
	}
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct harness *h = *state;

	harness_stop(h);
	free(h);
	return 0;
}

static struct mid_response *call_new(struct harness *h, const struct mid_request *req, int *ret)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	assert_non_null(resp);
	*ret = harness_call(h, req, resp);
	return resp;
}

/* Fetches every record (at most max) into out; returns the count. */
static size_t audit_all(struct harness *h, struct mid_audit_info *out, size_t max)
{
	struct mid_request req = {.type = MID_REQ_AUDIT};
	size_t n = 0;

	for (;;) {
		int r;
		struct mid_response *resp = call_new(h, &req, &r);

		assert_int_equal(r, MID_OK);
		for (unsigned i = 0; i < resp->count && n < max; i++)
			out[n++] = resp->audit[i];
		req.offset += resp->count;
		if (resp->count == 0 || req.offset >= resp->total) {
			free(resp);
			return n;
		}
		free(resp);
	}
}

static struct mid_response *audit_verify(struct harness *h)
{
	struct mid_request req = {.type = MID_REQ_AUDIT_VERIFY};
	int r;
	struct mid_response *resp = call_new(h, &req, &r);

	assert_int_equal(r, MID_OK);
	return resp;
}

static void issue_lists_record(void **state)
{
	struct harness *h = *state;
	struct mid_lease_info lease;
	struct mid_audit_info records[8];
	size_t n;

	assert_int_equal(harness_issue(h, "daemon", NULL, 0, NULL, &lease), MID_OK);
	n = audit_all(h, records, 8);
	assert_int_equal(n, 1);
	assert_int_equal(records[0].seq, 1);
	assert_string_equal(records[0].event, "issue");
	assert_string_equal(records[0].account, "daemon");
	assert_string_equal(records[0].lease, lease.lease);
	assert_int_equal(records[0].peer_uid, 0);
	assert_int_equal(strlen(records[0].hash), 64);
}

static void audit_pages_and_filters(void **state)
{
	struct harness *h = *state;
	struct mid_request req = {.type = MID_REQ_AUDIT};
	struct mid_response *resp;
	int r;

	for (int i = 0; i < 20; i++)
		assert_int_equal(harness_issue(h, i % 2 ? "daemon" : "bin", NULL, 0, NULL, NULL),
				 MID_OK);
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_OK);
	assert_int_equal(resp->total, 20);
	assert_int_equal(resp->count, MID_AUDIT_PAGE);
	free(resp);

	req.offset = 16;
	resp = call_new(h, &req, &r);
	assert_int_equal(resp->count, 4);
	assert_int_equal(resp->audit[0].seq, 17);
	free(resp);

	req.offset = 0;
	strcpy(req.account, "bin");
	resp = call_new(h, &req, &r);
	assert_int_equal(resp->total, 10);
	assert_string_equal(resp->audit[9].account, "bin");
	free(resp);

	memset(req.account, 0, sizeof(req.account));
	req.until = 1;
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_OK);
	assert_int_equal(resp->total, 0);
	free(resp);
}

static void audit_rejects_bad_filters(void **state)
{
	struct harness *h = *state;
	struct mid_request req = {.type = MID_REQ_AUDIT};
	struct mid_response *resp;
	int r;

	strcpy(req.account, "bad name");
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_ERR_INVALID);
	free(resp);

	memset(req.account, 0, sizeof(req.account));
	req.since = 200;
	req.until = 100;
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_ERR_INVALID);
	assert_non_null(strstr(resp->message, "since must be before until"));
	free(resp);

	req.since = -5;
	req.until = 0;
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_ERR_INVALID);
	free(resp);
}

/* Runs req as UID 65534 in a child; returns the reply's status. */
static int call_as_nobody(struct harness *h, const struct mid_request *req)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct mid_response *resp = calloc(1, sizeof(*resp));

		if (!resp || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(255);
		_exit(harness_call(h, req, resp) & 0xff);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void audit_requests_need_root(void **state)
{
	struct harness *h = *state;
	struct mid_request sign = {.type = MID_REQ_AUDIT_SIGN};

	if (geteuid() != 0)
		skip();
	/* The socket's directory must let the other UID reach the socket. */
	assert_int_equal(chmod(h->dir, 0711), 0);
	memset(sign.credential, 'a', 64);
	assert_int_equal(call_as_nobody(h, &(struct mid_request){.type = MID_REQ_AUDIT}),
			 MID_ERR_PERMISSION);
	assert_int_equal(call_as_nobody(h, &(struct mid_request){.type = MID_REQ_AUDIT_VERIFY}),
			 MID_ERR_PERMISSION);
	assert_int_equal(call_as_nobody(h, &sign), MID_ERR_PERMISSION);
}

static void verify_reports_intact(void **state)
{
	struct harness *h = *state;
	struct mid_response *resp;

	for (int i = 0; i < 3; i++)
		assert_int_equal(harness_issue(h, "daemon", NULL, 0, NULL, NULL), MID_OK);
	resp = audit_verify(h);
	assert_string_equal(resp->message, "intact");
	assert_non_null(strstr(resp->detail, "Checked 3 audit records, seq 1 to 3"));
	free(resp);
}

static void sign_rejects_bad_digest(void **state)
{
	struct harness *h = *state;
	static const char *const digests[] = {
		"", "abc", "zz00000000000000000000000000000000000000000000000000000000000000",
		"000000000000000000000000000000000000000000000000000000000000000",
		"00000000000000000000000000000000000000000000000000000000000000000",
	};

	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
		struct mid_request req = {.type = MID_REQ_AUDIT_SIGN};
		struct mid_response *resp;
		int r;

		strcpy(req.credential, digests[i]);
		resp = call_new(h, &req, &r);
		if (r != MID_ERR_INVALID)
			fail_msg("digest \"%s\" got status %d", digests[i], r);
		free(resp);
	}
}

static void hex_value(const char *detail, const char *key, uint8_t *out, size_t size)
{
	const char *p = strstr(detail, key);
	char hex[256] = "";

	assert_non_null(p);
	assert_int_equal(sscanf(p + strlen(key), "=%255[0-9a-f]", hex), 1);
	assert_int_equal(strlen(hex), size * 2);
	assert_int_equal(sodium_hex2bin(out, size, hex, strlen(hex), NULL, NULL, NULL), 0);
}

static void sign_returns_valid_signature(void **state)
{
	struct harness *h = *state;
	struct mid_request req = {.type = MID_REQ_AUDIT_SIGN};
	uint8_t digest[32], signature[crypto_sign_BYTES], key[crypto_sign_PUBLICKEYBYTES];
	uint8_t message[19 + 32], again[crypto_sign_PUBLICKEYBYTES];
	char path[400], pub_hex[80] = "", key_hex[80];
	struct mid_audit_info records[4];
	struct mid_response *resp;
	struct stat st;
	FILE *f;
	int r;

	randombytes_buf(digest, sizeof(digest));
	sodium_bin2hex(req.credential, sizeof(req.credential), digest, sizeof(digest));
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_OK);
	hex_value(resp->detail, "signature", signature, sizeof(signature));
	hex_value(resp->detail, "public_key", key, sizeof(key));
	free(resp);

	memcpy(message, "mid-audit-export-v1", 19);
	memcpy(message + 19, digest, 32);
	assert_int_equal(crypto_sign_verify_detached(signature, message, sizeof(message), key), 0);
	message[30] ^= 1;
	assert_int_not_equal(crypto_sign_verify_detached(signature, message, sizeof(message), key),
			     0);

	snprintf(path, sizeof(path), "%s/state/audit-sign.key", h->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/state/audit-sign.pub", h->dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(pub_hex, sizeof(pub_hex), f));
	fclose(f);
	sodium_bin2hex(key_hex, sizeof(key_hex), key, sizeof(key));
	assert_memory_equal(pub_hex, key_hex, 64);

	assert_int_equal(audit_all(h, records, 4), 1);
	assert_string_equal(records[0].event, "audit-sign");
	assert_memory_equal(records[0].detail + strlen("digest="), req.credential, 64);

	/* The key survives a restart. */
	assert_int_equal(harness_stop_agent(h), 0);
	assert_int_equal(harness_restart_agent(h), 0);
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_OK);
	hex_value(resp->detail, "public_key", again, sizeof(again));
	assert_memory_equal(again, key, sizeof(key));
	free(resp);
}

static void sign_rejects_readable_key(void **state)
{
	struct harness *h = *state;
	struct mid_request req = {.type = MID_REQ_AUDIT_SIGN};
	struct mid_response *resp;
	char path[400];
	int r;

	memset(req.credential, 'b', 64);
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_OK);
	free(resp);
	assert_int_equal(harness_stop_agent(h), 0);
	snprintf(path, sizeof(path), "%s/state/audit-sign.key", h->dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(harness_restart_agent(h), 0);
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_ERR_INTERNAL);
	assert_non_null(strstr(resp->message, "signing key"));
	free(resp);
}

static void state_sql(struct harness *h, const char *sql)
{
	char path[400];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/state/state.db", h->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

static void tamper_then_verify(struct harness *h, const char *sql, const char *expected)
{
	struct mid_response *resp;

	for (int i = 0; i < 5; i++)
		assert_int_equal(harness_issue(h, "daemon", NULL, 0, NULL, NULL), MID_OK);
	assert_int_equal(harness_stop_agent(h), 0);
	state_sql(h, sql);
	assert_int_equal(harness_restart_agent(h), 0);
	resp = audit_verify(h);
	assert_string_equal(resp->message, "broken");
	if (!strstr(resp->detail, expected))
		fail_msg("verification detail \"%s\" does not name \"%s\"", resp->detail, expected);
	free(resp);
}

static void edited_record_named(void **state)
{
	tamper_then_verify(*state, "UPDATE audit SET account = 'bin' WHERE seq = 2",
			   "First broken record: seq 2 (edited)");
}

static void deleted_record_named(void **state)
{
	tamper_then_verify(*state, "DELETE FROM audit WHERE seq = 3",
			   "First broken record: seq 3 (deleted)");
}

static size_t count_lines_with(const char *path, const char *needle, const char *line_start)
{
	char line[4096];
	size_t n = 0;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if ((needle && strstr(line, needle)) ||
		    (line_start && strncmp(line, line_start, strlen(line_start)) == 0))
			n++;
	fclose(f);
	return n;
}

/* A failed verification whose service and source carry a newline and
 * terminal escapes is one escaped log line and one audit record. */
static void verify_failure_escaped_once(void **state)
{
	struct harness *h = *state;
	struct mid_request req = {.type = MID_REQ_VERIFY};
	struct mid_audit_info records[8];
	struct mid_response *resp;
	char log_path[400];
	size_t n;
	int r;

	strcpy(req.account, "daemon");
	strcpy(req.credential, "mid1_0000000000000000_00_00");
	strcpy(req.service, "sshd\nFAKE: injected line\x1b[2J");
	strcpy(req.rhost, "192.0.2.1\r\x1b]0;title\a");
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_ERR_BAD_CREDENTIAL);
	free(resp);

	snprintf(log_path, sizeof(log_path), "%s/agent.log", h->dir);
	assert_int_equal(count_lines_with(log_path, "Credential verification failed", NULL), 1);
	assert_int_equal(count_lines_with(log_path, "service=sshd\\x0aFAKE: injected line\\x1b[2J",
					  NULL),
			 1);
	assert_int_equal(count_lines_with(log_path, "rhost=192.0.2.1\\x0d\\x1b]0;title\\x07", NULL),
			 1);
	assert_int_equal(count_lines_with(log_path, NULL, "FAKE"), 0);
	assert_int_equal(count_lines_with(log_path, "\x1b", NULL), 0);

	n = audit_all(h, records, 8);
	assert_int_equal(n, 1);
	assert_string_equal(records[0].event, "verify-failed");
	assert_string_equal(records[0].account, "daemon");
}

/* The agent rejects an account name with a newline before it logs or
 * records anything, so the raw name reaches neither the log nor the audit
 * log. */
static void invalid_name_reaches_no_log(void **state)
{
	struct harness *h = *state;
	struct mid_request req = {.type = MID_REQ_VERIFY};
	struct mid_audit_info records[8];
	struct mid_response *resp;
	char log_path[400];
	int r;

	strcpy(req.account, "evil\nroot\x1b[0m");
	strcpy(req.credential, "mid1_0000000000000000_00_00");
	resp = call_new(h, &req, &r);
	assert_int_equal(r, MID_ERR_INVALID);
	free(resp);

	snprintf(log_path, sizeof(log_path), "%s/agent.log", h->dir);
	assert_int_equal(count_lines_with(log_path, NULL, "root"), 0);
	assert_int_equal(count_lines_with(log_path, "evil", NULL), 0);
	assert_int_equal(count_lines_with(log_path, "\x1b", NULL), 0);
	assert_int_equal(audit_all(h, records, 8), 0);
}

static void retention_prunes_with_checkpoint(void **state)
{
	struct harness h;
	struct mid_audit_info records[8];
	struct mid_response *resp;
	size_t n;

	assert_int_equal(harness_start(&h, NULL, config_retention), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(harness_issue(&h, "daemon", NULL, 0, NULL, NULL), MID_OK);
	assert_int_equal(harness_stop_agent(&h), 0);
	sleep(2);
	assert_int_equal(harness_restart_agent(&h), 0);

	n = audit_all(&h, records, 8);
	assert_int_equal(n, 1);
	assert_string_equal(records[0].event, "checkpoint");
	assert_int_equal(records[0].seq, 4);
	assert_non_null(strstr(records[0].detail, "pruned_through=3 last_hash="));
	resp = audit_verify(&h);
	assert_string_equal(resp->message, "intact");
	free(resp);
	harness_stop(&h);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(issue_lists_record),
		T(audit_pages_and_filters),
		T(audit_rejects_bad_filters),
		T(audit_requests_need_root),
		T(verify_reports_intact),
		T(sign_rejects_bad_digest),
		T(sign_returns_valid_signature),
		T(sign_rejects_readable_key),
		T(edited_record_named),
		T(deleted_record_named),
		T(verify_failure_escaped_once),
		T(invalid_name_reaches_no_log),
		cmocka_unit_test(retention_prunes_with_checkpoint),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("agent audit", tests, NULL, NULL);
}

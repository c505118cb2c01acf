/* Writes the seed corpora that need code to make: protocol frames for
 * fuzz_protocol and tokens for fuzz_token. Run it as "make_seeds DIR". It
 * fills DIR/fuzz_protocol and DIR/fuzz_token, which must exist. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "token.h"

static const char *out_dir;

static void write_seed(const char *target, const char *name, const void *data, size_t size)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror(path);
		exit(EXIT_FAILURE);
	}
}

static void write_request(const char *name, const struct mid_request *req)
{
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n = mid_request_encode(req, frame, sizeof(frame));

	if (n < 0) {
		fprintf(stderr, "encoding request %s failed: %s\n", name, strerror((int)-n));
		exit(EXIT_FAILURE);
	}
	write_seed("fuzz_protocol", name, frame, (size_t)n);
}

static void write_response(const char *name, const struct mid_response *resp)
{
	static uint8_t frame[MID_FRAME_MAX];
	ssize_t n = mid_response_encode(resp, frame, sizeof(frame));

	if (n < 0) {
		fprintf(stderr, "encoding response %s failed: %s\n", name, strerror((int)-n));
		exit(EXIT_FAILURE);
	}
	write_seed("fuzz_protocol", name, frame, (size_t)n);
}

static void fill_lease(struct mid_lease_info *l, unsigned n)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->lease, sizeof(l->lease), "%016x", 0x5eed00u + n);
	snprintf(l->account, sizeof(l->account), "ci-%08x", n);
	strcpy(l->class_name, "ci");
	l->uid = 60000 + n;
	l->gid = 60000;
	l->created_at = 1700000000;
	l->expires_at = 1700000900;
	l->max_expires_at = 1700003600;
	l->max_uses = 1;
	l->requester_uid = 1000;
	l->state = (uint8_t)(n % 3);
	strcpy(l->reason, "nightly build");
}

/* Writes one request of every type with short values in every field. The
 * encoder keeps only the fields that the type carries. */
static void write_requests(void)
{
	for (uint8_t type = 1; type < _MID_REQ_MAX; type++) {
		struct mid_request req = {0};
		char name[64];

		req.type = type;
		strcpy(req.account, "deploy");
		strcpy(req.class_name, "ci");
		strcpy(req.lease, "0123456789abcdef");
		strcpy(req.credential, "mid1_0123456789abcdef_00");
		strcpy(req.service, "sshd");
		strcpy(req.rhost, "192.0.2.1");
		strcpy(req.tty, "pts/0");
		strcpy(req.reason, "release");
		strcpy(req.services, "sshd,sudo");
		strcpy(req.sources, "192.0.2.0/24");
		strcpy(req.session_id, "7");
		strcpy(req.id, "r-1");
		strcpy(req.as_user, "jenkins");
		req.at = 1700000000;
		req.since = 1690000000;
		req.until = 1710000000;
		req.ttl = 900;
		req.uses = 1;
		req.flags = MID_ISSUE_USES_SET;
		req.offset = 32;
		req.pid = 4321;
		snprintf(name, sizeof(name), "request-%s", mid_request_type_to_string(type));
		write_request(name, &req);
	}
}

static void write_responses(void)
{
	static struct mid_response resp;

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_ISSUE;
	fill_lease(&resp.lease, 0);
	strcpy(resp.credential, "mid1_0123456789abcdef_0011_22");
	write_response("response-issue", &resp);

	resp.type = MID_REQ_VERIFY;
	write_response("response-verify", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_REVOKE;
	resp.status = MID_ERR_NOT_FOUND;
	strcpy(resp.message, "no lease 0123456789abcdef");
	write_response("response-error", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_LIST;
	resp.total = 40;
	resp.count = 3;
	for (unsigned i = 0; i < resp.count; i++)
		fill_lease(&resp.entries[i], i);
	write_response("response-list", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_STATUS;
	resp.agent.pid = 99;
	resp.agent.started_at = 1700000000;
	resp.agent.live_leases = 2;
	resp.agent.total_leases = 5;
	strcpy(resp.agent.version, "0.1.0");
	strcpy(resp.agent.config_path, "/etc/mid/mid.conf");
	strcpy(resp.agent.state_dir, "/var/lib/mid");
	strcpy(resp.agent.runtime_dir, "/run/mid");
	write_response("response-status", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_ISSUE;
	resp.status = MID_PENDING;
	strcpy(resp.message, "waiting for approval");
	strcpy(resp.id, "r-1");
	write_response("response-pending", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_EXPLAIN;
	strcpy(resp.detail, "account deploy: allowed\nservice sshd: allowed\n");
	write_response("response-explain", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_SESSIONS;
	resp.total = 2;
	resp.count = 2;
	for (unsigned i = 0; i < resp.count; i++) {
		snprintf(resp.sessions[i].id, sizeof(resp.sessions[i].id), "s-%u", i);
		strcpy(resp.sessions[i].account, "deploy");
		strcpy(resp.sessions[i].service, "sshd");
		resp.sessions[i].pid = 100 + i;
		resp.sessions[i].state = (uint8_t)i;
	}
	write_response("response-sessions", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_AUDIT;
	resp.total = 1;
	resp.count = 1;
	resp.audit[0].seq = 1;
	resp.audit[0].at = 1700000000;
	strcpy(resp.audit[0].event, "issue");
	strcpy(resp.audit[0].account, "deploy");
	resp.audit[0].peer_uid = -1;
	memset(resp.audit[0].hash, 'a', sizeof(resp.audit[0].hash) - 1);
	write_response("response-audit", &resp);

	memset(&resp, 0, sizeof(resp));
	resp.type = MID_REQ_REQUESTS;
	resp.total = 1;
	resp.count = 1;
	strcpy(resp.approvals[0].id, "r-1");
	strcpy(resp.approvals[0].account, "deploy");
	resp.approvals[0].required = 2;
	write_response("response-requests", &resp);
}

static void write_tokens(void)
{
	static const uint8_t key[MID_HOST_KEY_BYTES];
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES];

	if (token_new("0123456789abcdef", key, token, hash) != 0) {
		fprintf(stderr, "making a token failed\n");
		exit(EXIT_FAILURE);
	}
	write_seed("fuzz_token", "token-valid", token, MID_TOKEN_LEN);

	/* The same token with its last check digit changed. */
	token[MID_TOKEN_LEN - 1] = token[MID_TOKEN_LEN - 1] == '0' ? '1' : '0';
	write_seed("fuzz_token", "token-bad-check", token, MID_TOKEN_LEN);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return EXIT_FAILURE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "sodium_init failed\n");
		return EXIT_FAILURE;
	}
	out_dir = argv[1];
	write_requests();
	write_responses();
	write_tokens();
	return EXIT_SUCCESS;
}

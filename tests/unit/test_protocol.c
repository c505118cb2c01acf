/* Unit tests of lib/protocol.c and lib/cursor.c: wire frames of the
 * agent's protocol and the bounded reader and writer under them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "protocol.h"

/* Fills the fields that a request of this type carries on the wire, with
 * values that differ from each other, and leaves the rest zero. A type
 * added to enum mid_request_type fails here until it gets a sample. */
static void fill_request(uint8_t type, struct mid_request *req)
{
	memset(req, 0, sizeof(*req));
	req->type = type;

	switch (type) {
	case MID_REQ_ISSUE:
		strcpy(req->account, "deploy");
		strcpy(req->class_name, "ci");
		req->ttl = 900;
		req->uses = 3;
		req->flags = MID_ISSUE_USES_SET;
		strcpy(req->reason, "release 1.2");
		strcpy(req->services, "sshd,sudo");
		strcpy(req->sources, "10.0.0.0/8");
		break;
	case MID_REQ_VERIFY:
		strcpy(req->account, "deploy");
		strcpy(req->credential, "mid1_secret");
		strcpy(req->service, "sshd");
		strcpy(req->rhost, "192.0.2.7");
		strcpy(req->tty, "ssh");
		break;
	case MID_REQ_ACCOUNT:
		strcpy(req->account, "deploy");
		strcpy(req->lease, "0123456789abcdef");
		strcpy(req->service, "sshd");
		strcpy(req->rhost, "host.example");
		strcpy(req->tty, "pts/1");
		break;
	case MID_REQ_REVOKE:
		strcpy(req->lease, "0123456789abcdef");
		strcpy(req->reason, "left the team");
		break;
	case MID_REQ_RENEW:
		strcpy(req->lease, "fedcba9876543210");
		req->ttl = UINT32_MAX;
		break;
	case MID_REQ_LIST:
	case MID_REQ_SESSIONS:
	case MID_REQ_REQUESTS:
		req->offset = 0x01020304;
		break;
	case MID_REQ_STATUS:
	case MID_REQ_RELOAD:
	case MID_REQ_AUDIT_VERIFY:
		break;
	case MID_REQ_SESSION_OPEN:
	case MID_REQ_SESSION_CLOSE:
		strcpy(req->account, "ci-0011223344556677");
		strcpy(req->lease, "0011223344556677");
		strcpy(req->service, "sshd");
		strcpy(req->rhost, "::1");
		strcpy(req->tty, "pts/0");
		strcpy(req->session_id, "c42");
		req->pid = 4242;
		break;
	case MID_REQ_APPROVE:
	case MID_REQ_DENY:
	case MID_REQ_KILL:
		strcpy(req->id, "r-17");
		strcpy(req->reason, "ticket OPS-9");
		break;
	case MID_REQ_COLLECT:
		strcpy(req->id, "r-18");
		break;
	case MID_REQ_UNLOCK:
		strcpy(req->account, "deploy");
		strcpy(req->rhost, "198.51.100.4");
		break;
	case MID_REQ_EXPLAIN:
		strcpy(req->account, "deploy");
		strcpy(req->class_name, "ci");
		strcpy(req->service, "sudo");
		strcpy(req->rhost, "203.0.113.9");
		req->at = -86400;
		strcpy(req->as_user, "jenkins");
		break;
	case MID_REQ_AUDIT:
		req->since = 1700000000;
		req->until = INT64_MAX;
		strcpy(req->account, "backup");
		req->offset = 16;
		break;
	case MID_REQ_AUDIT_SIGN:
		memset(req->credential, 'a', 64);
		break;
	default:
		fail_msg("no sample request of type %u", type);
	}
}

/* Fills every field of the request, whatever its type carries. */
static void fill_request_all_fields(uint8_t type, struct mid_request *req)
{
	memset(req, 0, sizeof(*req));
	req->type = type;
	memset(req->account, 'a', MID_NAME_MAX);
	memset(req->class_name, 'c', MID_NAME_MAX);
	memset(req->lease, 'l', MID_LEASE_ID_MAX);
	memset(req->credential, 'k', MID_CREDENTIAL_MAX);
	memset(req->service, 's', MID_SERVICE_MAX);
	memset(req->rhost, 'h', MID_HOST_MAX);
	memset(req->tty, 't', MID_TTY_MAX);
	memset(req->reason, 'r', MID_TEXT_MAX);
	memset(req->services, 'v', MID_TEXT_MAX);
	memset(req->sources, 'o', MID_TEXT_MAX);
	memset(req->session_id, 'e', MID_NAME_MAX);
	memset(req->id, 'i', MID_ID_MAX);
	memset(req->as_user, 'u', MID_NAME_MAX);
	req->at = INT64_MIN;
	req->since = -1;
	req->until = INT64_MAX;
	req->ttl = 0x11223344;
	req->uses = 0x55667788;
	req->flags = 0x99aabbcc;
	req->offset = 0xddeeff00;
	req->pid = UINT32_MAX;
}

static void assert_request_equal(const struct mid_request *a, const struct mid_request *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->account, b->account);
	assert_string_equal(a->class_name, b->class_name);
	assert_string_equal(a->lease, b->lease);
	assert_string_equal(a->credential, b->credential);
	assert_string_equal(a->service, b->service);
	assert_string_equal(a->rhost, b->rhost);
	assert_string_equal(a->tty, b->tty);
	assert_string_equal(a->reason, b->reason);
	assert_string_equal(a->services, b->services);
	assert_string_equal(a->sources, b->sources);
	assert_string_equal(a->session_id, b->session_id);
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->as_user, b->as_user);
	assert_int_equal(a->at, b->at);
	assert_int_equal(a->since, b->since);
	assert_int_equal(a->until, b->until);
	assert_int_equal(a->ttl, b->ttl);
	assert_int_equal(a->uses, b->uses);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->pid, b->pid);
}

static void fill_lease(struct mid_lease_info *l, unsigned n)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->lease, sizeof(l->lease), "%016x", 0xabc000u + n);
	snprintf(l->account, sizeof(l->account), "ci-%08x", n);
	strcpy(l->class_name, "ci");
	l->uid = 60000 + n;
	l->gid = 61000 + n;
	l->created_at = 1700000000 + (int64_t)n;
	l->expires_at = 1700000900 + (int64_t)n;
	l->max_expires_at = INT64_MAX - n;
	l->max_uses = n;
	l->uses = n / 2;
	l->requester_uid = 1000 + n;
	l->state = (uint8_t)(n % 3);
	snprintf(l->reason, sizeof(l->reason), "reason %u", n);
	strcpy(l->services, n % 2 ? "sshd" : "");
	strcpy(l->sources, "192.0.2.0/24,local");
}

static void assert_lease_equal(const struct mid_lease_info *a, const struct mid_lease_info *b)
{
	assert_string_equal(a->lease, b->lease);
	assert_string_equal(a->account, b->account);
	assert_string_equal(a->class_name, b->class_name);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->expires_at, b->expires_at);
	assert_int_equal(a->max_expires_at, b->max_expires_at);
	assert_int_equal(a->max_uses, b->max_uses);
	assert_int_equal(a->uses, b->uses);
	assert_int_equal(a->requester_uid, b->requester_uid);
	assert_int_equal(a->state, b->state);
	assert_string_equal(a->reason, b->reason);
	assert_string_equal(a->services, b->services);
	assert_string_equal(a->sources, b->sources);
}

static void fill_session(struct mid_session_info *session, unsigned n)
{
	memset(session, 0, sizeof(*session));
	snprintf(session->id, sizeof(session->id), "s-%u", n);
	snprintf(session->account, sizeof(session->account), "ci-%08x", n);
	snprintf(session->lease, sizeof(session->lease), "%016x", 0xdef000u + n);
	strcpy(session->service, "sshd");
	strcpy(session->rhost, "2001:db8::1");
	snprintf(session->tty, sizeof(session->tty), "pts/%u", n);
	snprintf(session->logind_id, sizeof(session->logind_id), "%u", 100 + n);
	session->pid = 5000 + n;
	session->started_at = 1700000000 + (int64_t)n;
	session->deadline = 1700000900 + (int64_t)n;
	session->state = (uint8_t)(n % 3);
}

static void assert_session_equal(const struct mid_session_info *a, const struct mid_session_info *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->account, b->account);
	assert_string_equal(a->lease, b->lease);
	assert_string_equal(a->service, b->service);
	assert_string_equal(a->rhost, b->rhost);
	assert_string_equal(a->tty, b->tty);
	assert_string_equal(a->logind_id, b->logind_id);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->started_at, b->started_at);
	assert_int_equal(a->deadline, b->deadline);
	assert_int_equal(a->state, b->state);
}

static void fill_audit(struct mid_audit_info *record, unsigned n)
{
	memset(record, 0, sizeof(*record));
	record->seq = n + 1;
	record->at = 1700000000 + (int64_t)n;
	strcpy(record->event, n % 2 ? "issue" : "verify");
	strcpy(record->account, "deploy");
	snprintf(record->lease, sizeof(record->lease), "%016x", n);
	record->peer_uid = n == 0 ? -1 : (int64_t)(1000 + n);
	snprintf(record->detail, sizeof(record->detail), "service=sshd n=%u", n);
	memset(record->hash, 'f', 64);
}

static void assert_audit_equal(const struct mid_audit_info *a, const struct mid_audit_info *b)
{
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->at, b->at);
	assert_string_equal(a->event, b->event);
	assert_string_equal(a->account, b->account);
	assert_string_equal(a->lease, b->lease);
	assert_int_equal(a->peer_uid, b->peer_uid);
	assert_string_equal(a->detail, b->detail);
	assert_string_equal(a->hash, b->hash);
}

static void fill_approval(struct mid_approval_info *approval, unsigned n)
{
	memset(approval, 0, sizeof(*approval));
	snprintf(approval->id, sizeof(approval->id), "r-%u", n);
	strcpy(approval->account, "deploy");
	strcpy(approval->class_name, n % 2 ? "ci" : "");
	approval->requester_uid = 1000 + n;
	approval->approvals = n % 3;
	approval->required = 2;
	approval->created_at = 1700000000 + (int64_t)n;
	approval->expires_at = 1700003600 + (int64_t)n;
	approval->state = (uint8_t)(n % 5);
	snprintf(approval->reason, sizeof(approval->reason), "change %u", n);
}

static void assert_approval_equal(const struct mid_approval_info *a,
				  const struct mid_approval_info *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->account, b->account);
	assert_string_equal(a->class_name, b->class_name);
	assert_int_equal(a->requester_uid, b->requester_uid);
	assert_int_equal(a->approvals, b->approvals);
	assert_int_equal(a->required, b->required);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->expires_at, b->expires_at);
	assert_int_equal(a->state, b->state);
	assert_string_equal(a->reason, b->reason);
}

static void assert_agent_status_equal(const struct mid_agent_status *a,
				      const struct mid_agent_status *b)
{
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->started_at, b->started_at);
	assert_int_equal(a->live_leases, b->live_leases);
	assert_int_equal(a->total_leases, b->total_leases);
	assert_string_equal(a->version, b->version);
	assert_string_equal(a->config_path, b->config_path);
	assert_string_equal(a->state_dir, b->state_dir);
	assert_string_equal(a->runtime_dir, b->runtime_dir);
}

static void assert_response_equal(const struct mid_response *a, const struct mid_response *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->status, b->status);
	assert_string_equal(a->message, b->message);
	assert_lease_equal(&a->lease, &b->lease);
	assert_string_equal(a->credential, b->credential);
	assert_int_equal(a->total, b->total);
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < MID_LIST_PAGE; i++)
		assert_lease_equal(&a->entries[i], &b->entries[i]);
	assert_agent_status_equal(&a->agent, &b->agent);
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->detail, b->detail);
	for (size_t i = 0; i < MID_SESSION_PAGE; i++)
		assert_session_equal(&a->sessions[i], &b->sessions[i]);
	for (size_t i = 0; i < MID_AUDIT_PAGE; i++)
		assert_audit_equal(&a->audit[i], &b->audit[i]);
	for (size_t i = 0; i < MID_LIST_PAGE; i++)
		assert_approval_equal(&a->approvals[i], &b->approvals[i]);
}

/* Allocates a response on the heap, because a few copies of one would
 * crowd a test's stack. */
static struct mid_response *response_new(uint8_t type, uint8_t status)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	assert_non_null(resp);
	resp->type = type;
	resp->status = status;
	strcpy(resp->message, status == MID_OK ? "" : "no such lease");
	return resp;
}

static struct mid_response *issue_response_new(void)
{
	struct mid_response *resp = response_new(MID_REQ_ISSUE, MID_OK);

	fill_lease(&resp->lease, 1);
	strcpy(resp->credential, "mid1_0123456789abcdef_secret_check");
	return resp;
}

static struct mid_response *list_response_new(uint8_t count)
{
	struct mid_response *resp = response_new(MID_REQ_LIST, MID_OK);

	resp->total = 1000;
	resp->count = count;
	for (unsigned i = 0; i < count; i++)
		fill_lease(&resp->entries[i], i);
	return resp;
}

static struct mid_response *status_response_new(void)
{
	struct mid_response *resp = response_new(MID_REQ_STATUS, MID_OK);

	resp->agent.pid = 123;
	resp->agent.started_at = -1;
	resp->agent.live_leases = 4;
	resp->agent.total_leases = 9;
	strcpy(resp->agent.version, "0.1.0");
	strcpy(resp->agent.config_path, "/etc/mid/mid.conf");
	strcpy(resp->agent.state_dir, "/var/lib/mid");
	strcpy(resp->agent.runtime_dir, "/run/mid");
	return resp;
}

static struct mid_response *sessions_response_new(uint8_t count)
{
	struct mid_response *resp = response_new(MID_REQ_SESSIONS, MID_OK);

	resp->total = 70;
	resp->count = count;
	for (unsigned i = 0; i < count; i++)
		fill_session(&resp->sessions[i], i);
	return resp;
}

static struct mid_response *audit_response_new(uint8_t count)
{
	struct mid_response *resp = response_new(MID_REQ_AUDIT, MID_OK);

	resp->total = 5000;
	resp->count = count;
	for (unsigned i = 0; i < count; i++)
		fill_audit(&resp->audit[i], i);
	return resp;
}

static struct mid_response *requests_response_new(uint8_t count)
{
	struct mid_response *resp = response_new(MID_REQ_REQUESTS, MID_OK);

	resp->total = count;
	resp->count = count;
	for (unsigned i = 0; i < count; i++)
		fill_approval(&resp->approvals[i], i);
	return resp;
}

static struct mid_response *explain_response_new(void)
{
	struct mid_response *resp = response_new(MID_REQ_EXPLAIN, MID_OK);

	memset(resp->detail, 'x', MID_DETAIL_MAX);
	resp->detail[10] = '\n';
	return resp;
}

/* Encodes resp, decodes the frame and checks that every field is back and
 * that encoding the result again gives the same bytes. */
static void check_response_round_trip(const struct mid_response *resp)
{
	uint8_t frame[MID_FRAME_MAX], again[MID_FRAME_MAX];
	struct mid_response *decoded = calloc(1, sizeof(*decoded));
	ssize_t n, m;

	assert_non_null(decoded);
	n = mid_response_encode(resp, frame, sizeof(frame));
	assert_true(n > 0);
	assert_int_equal(mid_response_decode(frame, (size_t)n, decoded), 0);
	assert_response_equal(decoded, resp);

	m = mid_response_encode(decoded, again, sizeof(again));
	assert_int_equal(m, n);
	assert_memory_equal(again, frame, (size_t)n);
	free(decoded);
}

/* Checks that every proper prefix of the frame is rejected as short. */
static void check_request_truncations(const uint8_t *frame, size_t size)
{
	for (size_t len = 0; len < size; len++) {
		struct mid_request req;
		int r = mid_request_decode(frame, len, &req);

		if (r != -EBADMSG)
			fail_msg("decoding %zu of %zu bytes returned %d, expected -EBADMSG", len, size, r);
	}
}

static void check_response_truncations(const uint8_t *frame, size_t size)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	assert_non_null(resp);
	for (size_t len = 0; len < size; len++) {
		int r = mid_response_decode(frame, len, resp);

		if (r != -EBADMSG)
			fail_msg("decoding %zu of %zu bytes returned %d, expected -EBADMSG", len, size, r);
	}
	free(resp);
}

static void request_round_trip(void **state)
{
	for (uint8_t type = 1; type < _MID_REQ_MAX; type++) {
		uint8_t frame[MID_FRAME_MAX], again[MID_FRAME_MAX];
		struct mid_request req, decoded;
		ssize_t n, m;

		print_message("# request type %u\n", type);
		fill_request(type, &req);
		n = mid_request_encode(&req, frame, sizeof(frame));
		assert_true(n >= 2);
		assert_int_equal(frame[0], MID_PROTOCOL_VERSION);
		assert_int_equal(frame[1], type);

		memset(&decoded, 0xee, sizeof(decoded));
		assert_int_equal(mid_request_decode(frame, (size_t)n, &decoded), 0);
		assert_request_equal(&decoded, &req);

		m = mid_request_encode(&decoded, again, sizeof(again));
		assert_int_equal(m, n);
		assert_memory_equal(again, frame, (size_t)n);
	}
}

/* Whatever fields a type carries, each comes back intact: encoding the
 * decoded request gives the same bytes again. */
static void request_all_fields_round_trip(void **state)
{
	for (uint8_t type = 1; type < _MID_REQ_MAX; type++) {
		uint8_t frame[MID_FRAME_MAX], again[MID_FRAME_MAX];
		struct mid_request req, decoded;
		ssize_t n, m;

		print_message("# request type %u\n", type);
		fill_request_all_fields(type, &req);
		n = mid_request_encode(&req, frame, sizeof(frame));
		assert_true(n >= 2);
		assert_int_equal(mid_request_decode(frame, (size_t)n, &decoded), 0);

		m = mid_request_encode(&decoded, again, sizeof(again));
		assert_int_equal(m, n);
		assert_memory_equal(again, frame, (size_t)n);
	}
}

static void request_wire_bytes(void **state)
{
	static const uint8_t list_frame[] = {MID_PROTOCOL_VERSION, MID_REQ_LIST, 0x04, 0x03, 0x02, 0x01};
	static const uint8_t revoke_frame[] = {
		MID_PROTOCOL_VERSION, MID_REQ_REVOKE, 0x02, 0x00, 'a', 'b', 0x00, 0x00,
	};
	uint8_t frame[64];
	struct mid_request req;
	ssize_t n;

	fill_request(MID_REQ_LIST, &req);
	n = mid_request_encode(&req, frame, sizeof(frame));
	assert_int_equal(n, sizeof(list_frame));
	assert_memory_equal(frame, list_frame, sizeof(list_frame));

	memset(&req, 0, sizeof(req));
	req.type = MID_REQ_REVOKE;
	strcpy(req.lease, "ab");
	n = mid_request_encode(&req, frame, sizeof(frame));
	assert_int_equal(n, sizeof(revoke_frame));
	assert_memory_equal(frame, revoke_frame, sizeof(revoke_frame));

	memset(&req, 0, sizeof(req));
	req.type = MID_REQ_STATUS;
	n = mid_request_encode(&req, frame, sizeof(frame));
	assert_int_equal(n, 2);
}

static void request_truncated(void **state)
{
	for (uint8_t type = 1; type < _MID_REQ_MAX; type++) {
		uint8_t frame[MID_FRAME_MAX];
		struct mid_request req;
		ssize_t n;

		fill_request(type, &req);
		n = mid_request_encode(&req, frame, sizeof(frame));
		assert_true(n >= 2);
		check_request_truncations(frame, (size_t)n);
	}
}

static void request_trailing_byte(void **state)
{
	for (uint8_t type = 1; type < _MID_REQ_MAX; type++) {
		uint8_t frame[MID_FRAME_MAX];
		struct mid_request req;
		ssize_t n;

		fill_request(type, &req);
		n = mid_request_encode(&req, frame, sizeof(frame) - 1);
		assert_true(n >= 2);
		frame[n] = 0;
		assert_int_equal(mid_request_decode(frame, (size_t)n + 1, &req), -EBADMSG);
	}
}

static void request_wrong_version(void **state)
{
	static const uint8_t versions[] = {0, MID_PROTOCOL_VERSION + 1, 0xff};
	uint8_t frame[MID_FRAME_MAX];
	struct mid_request req;
	ssize_t n;

	fill_request(MID_REQ_VERIFY, &req);
	n = mid_request_encode(&req, frame, sizeof(frame));
	assert_true(n >= 2);
	for (size_t i = 0; i < MID_ELEMENTSOF(versions); i++) {
		frame[0] = versions[i];
		assert_int_equal(mid_request_decode(frame, (size_t)n, &req), -EPROTO);
	}
}

static void request_unknown_type(void **state)
{
	static const uint8_t types[] = {0, _MID_REQ_MAX, 0x7f, 0xff};
	struct mid_request req;
	uint8_t frame[MID_FRAME_MAX];

	for (size_t i = 0; i < MID_ELEMENTSOF(types); i++) {
		uint8_t short_frame[] = {MID_PROTOCOL_VERSION, types[i]};

		assert_int_equal(mid_request_decode(short_frame, sizeof(short_frame), &req),
				 -EOPNOTSUPP);

		memset(&req, 0, sizeof(req));
		req.type = types[i];
		assert_int_equal(mid_request_encode(&req, frame, sizeof(frame)), -EOPNOTSUPP);
	}
}

/* Builds an ISSUE frame whose account field is `len` bytes of 'a'. */
static size_t issue_frame_with_account(size_t len, uint8_t *frame, size_t size)
{
	char account[MID_FRAME_MAX];
	struct writer w;

	memset(account, 'a', len);
	writer_init(&w, frame, size);
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, MID_REQ_ISSUE);
	writer_put_strn(&w, account, len);
	writer_put_str(&w, "ci");
	writer_put_u32(&w, 60);
	writer_put_u32(&w, 0);
	writer_put_u32(&w, 0);
	writer_put_str(&w, "");
	writer_put_str(&w, "");
	writer_put_str(&w, "");
	assert_int_equal(w.error, 0);
	return w.pos;
}

static void request_string_too_long(void **state)
{
	uint8_t frame[MID_FRAME_MAX];
	struct mid_request req;
	size_t n;

	n = issue_frame_with_account(MID_NAME_MAX, frame, sizeof(frame));
	assert_int_equal(mid_request_decode(frame, n, &req), 0);
	assert_int_equal(strlen(req.account), MID_NAME_MAX);

	n = issue_frame_with_account(MID_NAME_MAX + 1, frame, sizeof(frame));
	assert_int_equal(mid_request_decode(frame, n, &req), -EMSGSIZE);

	n = issue_frame_with_account(1000, frame, sizeof(frame));
	assert_int_equal(mid_request_decode(frame, n, &req), -EMSGSIZE);
}

static void request_credential_too_long(void **state)
{
	char credential[MID_CREDENTIAL_MAX + 2];
	uint8_t frame[MID_FRAME_MAX];
	struct mid_request req;
	struct writer w;

	memset(credential, 'c', sizeof(credential));
	writer_init(&w, frame, sizeof(frame));
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, MID_REQ_VERIFY);
	writer_put_str(&w, "deploy");
	writer_put_strn(&w, credential, MID_CREDENTIAL_MAX + 1);
	writer_put_str(&w, "sshd");
	writer_put_str(&w, "");
	writer_put_str(&w, "");
	assert_int_equal(w.error, 0);

	assert_int_equal(mid_request_decode(frame, w.pos, &req), -EMSGSIZE);
}

static void request_nul_in_string(void **state)
{
	uint8_t frame[64];
	struct mid_request req;
	struct writer w;

	writer_init(&w, frame, sizeof(frame));
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, MID_REQ_REVOKE);
	writer_put_strn(&w, "0123\0" "56789abcdef", 16);
	writer_put_str(&w, "reason");
	assert_int_equal(w.error, 0);

	assert_int_equal(mid_request_decode(frame, w.pos, &req), -EBADMSG);
}

static void request_failure_keeps_output(void **state)
{
	static const uint8_t frame[] = {MID_PROTOCOL_VERSION, MID_REQ_RENEW, 0x05, 0x00, 'a'};
	struct mid_request req, before;

	fill_request(MID_REQ_ISSUE, &req);
	memcpy(&before, &req, sizeof(before));
	assert_int_equal(mid_request_decode(frame, sizeof(frame), &req), -EBADMSG);
	assert_memory_equal(&req, &before, sizeof(req));
}

static void request_encode_no_room(void **state)
{
	uint8_t frame[MID_FRAME_MAX];
	struct mid_request req;
	ssize_t n;

	fill_request(MID_REQ_ISSUE, &req);
	n = mid_request_encode(&req, frame, sizeof(frame));
	assert_true(n > 2);
	for (size_t size = 0; size < (size_t)n; size++)
		assert_int_equal(mid_request_encode(&req, frame, size), -EMSGSIZE);
}

static void request_wipe_credential(void **state)
{
	static const char zeros[MID_CREDENTIAL_MAX + 1];
	struct mid_request req;

	fill_request(MID_REQ_VERIFY, &req);
	memset(req.credential, 'x', sizeof(req.credential));
	mid_request_wipe(&req);

	assert_memory_equal(req.credential, zeros, sizeof(zeros));
	assert_string_equal(req.account, "deploy");
}

static void response_wipe_credential(void **state)
{
	static const char zeros[MID_CREDENTIAL_MAX + 1];
	struct mid_response *resp = issue_response_new();

	memset(resp->credential, 'x', sizeof(resp->credential));
	mid_response_wipe(resp);

	assert_memory_equal(resp->credential, zeros, sizeof(zeros));
	assert_string_equal(resp->lease.account, "ci-00000001");
	free(resp);
}

static void response_issue_round_trip(void **state)
{
	struct mid_response *resp = issue_response_new();

	check_response_round_trip(resp);
	free(resp);
}

static void response_lease_round_trip(void **state)
{
	static const uint8_t types[] = {MID_REQ_VERIFY, MID_REQ_ACCOUNT, MID_REQ_REVOKE,
					MID_REQ_RENEW, MID_REQ_SESSION_OPEN};

	for (size_t i = 0; i < MID_ELEMENTSOF(types); i++) {
		struct mid_response *resp = response_new(types[i], MID_OK);

		print_message("# reply type %u\n", types[i]);
		fill_lease(&resp->lease, 7);
		check_response_round_trip(resp);
		free(resp);
	}
}

static void response_status_round_trip(void **state)
{
	struct mid_response *resp = status_response_new();

	check_response_round_trip(resp);
	free(resp);
}

static void response_collect_round_trip(void **state)
{
	struct mid_response *resp = issue_response_new();

	resp->type = MID_REQ_COLLECT;
	check_response_round_trip(resp);
	free(resp);
}

static void response_detail_round_trip(void **state)
{
	static const uint8_t types[] = {MID_REQ_EXPLAIN, MID_REQ_AUDIT_VERIFY, MID_REQ_AUDIT_SIGN,
					MID_REQ_RELOAD};

	for (size_t i = 0; i < MID_ELEMENTSOF(types); i++) {
		struct mid_response *resp = explain_response_new();

		print_message("# reply type %u\n", types[i]);
		resp->type = types[i];
		check_response_round_trip(resp);
		free(resp);
	}
}

/* Builds a page reply of kind 0 to 3: leases, sessions, audit records or
 * approval requests. */
static struct mid_response *page_response_new(size_t kind, uint8_t count)
{
	switch (kind) {
	case 0:
		return list_response_new(count);
	case 1:
		return sessions_response_new(count);
	case 2:
		return audit_response_new(count);
	case 3:
		return requests_response_new(count);
	default:
		return NULL;
	}
}

static const uint8_t page_max[] = {MID_LIST_PAGE, MID_SESSION_PAGE, MID_AUDIT_PAGE, MID_LIST_PAGE};

static void response_pages_round_trip(void **state)
{
	for (size_t kind = 0; kind < MID_ELEMENTSOF(page_max); kind++) {
		const uint8_t counts[] = {0, 1, 2, page_max[kind]};

		for (size_t i = 0; i < MID_ELEMENTSOF(counts); i++) {
			struct mid_response *resp = page_response_new(kind, counts[i]);

			print_message("# page kind %zu with %u entries\n", kind, counts[i]);
			check_response_round_trip(resp);
			free(resp);
		}
	}
}

static void response_pending_round_trip(void **state)
{
	struct mid_response *resp = response_new(MID_REQ_ISSUE, MID_PENDING);

	strcpy(resp->message, "waiting for 2 approvals");
	memset(resp->id, 'p', MID_ID_MAX);
	check_response_round_trip(resp);
	free(resp);
}

static void response_session_close_round_trip(void **state)
{
	struct mid_response *resp = response_new(MID_REQ_SESSION_CLOSE, MID_OK);

	check_response_round_trip(resp);
	free(resp);
}

/* A reply with a status other than MID_OK carries only its message and
 * id: the lease and the credential stay off the wire. */
static void response_error_carries_message(void **state)
{
	for (uint8_t status = MID_ERR_DENIED; status < _MID_STATUS_MAX; status++) {
		struct mid_response *resp = issue_response_new();
		struct mid_response *decoded = calloc(1, sizeof(*decoded));
		uint8_t frame[MID_FRAME_MAX];
		ssize_t n;

		assert_non_null(decoded);
		resp->status = status;
		snprintf(resp->message, sizeof(resp->message), "failure %u", status);
		strcpy(resp->id, "r-1");
		n = mid_response_encode(resp, frame, sizeof(frame));
		assert_int_equal(n, 3 + 2 + (ssize_t)strlen(resp->message) + 2 + 3);

		assert_int_equal(mid_response_decode(frame, (size_t)n, decoded), 0);
		assert_int_equal(decoded->status, status);
		assert_string_equal(decoded->message, resp->message);
		assert_string_equal(decoded->id, "r-1");
		assert_string_equal(decoded->credential, "");
		assert_string_equal(decoded->lease.lease, "");
		free(decoded);
		free(resp);
	}
}

static struct mid_response *sample_responses_new(size_t i)
{
	switch (i) {
	case 0:
		return issue_response_new();
	case 1:
		return list_response_new(3);
	case 2:
		return status_response_new();
	case 3:
		return sessions_response_new(2);
	case 4:
		return audit_response_new(2);
	case 5:
		return requests_response_new(2);
	case 6:
		return explain_response_new();
	default:
		return NULL;
	}
}

static void response_truncated(void **state)
{
	struct mid_response *resp;

	for (size_t i = 0; (resp = sample_responses_new(i)); i++) {
		uint8_t frame[MID_FRAME_MAX];
		ssize_t n = mid_response_encode(resp, frame, sizeof(frame));

		assert_true(n > 3);
		check_response_truncations(frame, (size_t)n);
		free(resp);
	}
}

static void response_trailing_byte(void **state)
{
	struct mid_response *resp;

	for (size_t i = 0; (resp = sample_responses_new(i)); i++) {
		uint8_t frame[MID_FRAME_MAX];
		ssize_t n = mid_response_encode(resp, frame, sizeof(frame) - 1);

		assert_true(n > 3);
		frame[n] = 0;
		assert_int_equal(mid_response_decode(frame, (size_t)n + 1, resp), -EBADMSG);
		free(resp);
	}
}

static void response_wrong_version(void **state)
{
	struct mid_response *resp = status_response_new();
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n = mid_response_encode(resp, frame, sizeof(frame));

	assert_true(n > 3);
	frame[0] = MID_PROTOCOL_VERSION + 1;
	assert_int_equal(mid_response_decode(frame, (size_t)n, resp), -EPROTO);
	frame[0] = 0;
	assert_int_equal(mid_response_decode(frame, (size_t)n, resp), -EPROTO);
	free(resp);
}

static void response_unknown_type(void **state)
{
	static const uint8_t types[] = {0, _MID_REQ_MAX, 0xff};
	struct mid_response *resp = response_new(MID_REQ_STATUS, MID_OK);

	for (size_t i = 0; i < MID_ELEMENTSOF(types); i++) {
		uint8_t frame[] = {MID_PROTOCOL_VERSION, types[i], MID_OK, 0, 0, 0, 0};

		assert_int_equal(mid_response_decode(frame, sizeof(frame), resp), -EOPNOTSUPP);
	}
	free(resp);
}

static void response_unknown_status(void **state)
{
	uint8_t frame[] = {MID_PROTOCOL_VERSION, MID_REQ_REVOKE, _MID_STATUS_MAX, 0, 0, 0, 0};
	struct mid_response *resp = response_new(MID_REQ_STATUS, MID_OK);

	assert_int_equal(mid_response_decode(frame, sizeof(frame), resp), -EBADMSG);
	frame[2] = 0xff;
	assert_int_equal(mid_response_decode(frame, sizeof(frame), resp), -EBADMSG);
	free(resp);
}

static void response_message_too_long(void **state)
{
	char message[MID_TEXT_MAX + 1];
	uint8_t frame[MID_FRAME_MAX];
	struct mid_response *resp = response_new(MID_REQ_STATUS, MID_OK);
	struct writer w;

	memset(message, 'm', sizeof(message));
	writer_init(&w, frame, sizeof(frame));
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, MID_REQ_REVOKE);
	writer_put_u8(&w, MID_ERR_NOT_FOUND);
	writer_put_strn(&w, message, MID_TEXT_MAX);
	writer_put_str(&w, "");
	assert_int_equal(w.error, 0);
	assert_int_equal(mid_response_decode(frame, w.pos, resp), 0);
	assert_int_equal(strlen(resp->message), MID_TEXT_MAX);

	writer_init(&w, frame, sizeof(frame));
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, MID_REQ_REVOKE);
	writer_put_u8(&w, MID_ERR_NOT_FOUND);
	writer_put_strn(&w, message, MID_TEXT_MAX + 1);
	writer_put_str(&w, "");
	assert_int_equal(w.error, 0);
	assert_int_equal(mid_response_decode(frame, w.pos, resp), -EMSGSIZE);
	free(resp);
}

static void response_nul_in_credential(void **state)
{
	struct mid_response *resp = issue_response_new();
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n = mid_response_encode(resp, frame, sizeof(frame));
	size_t credential_len = strlen(resp->credential);

	assert_true(n > (ssize_t)credential_len);
	/* The credential is the last field, so its bytes end the frame. */
	frame[(size_t)n - credential_len + 4] = '\0';
	assert_int_equal(mid_response_decode(frame, (size_t)n, resp), -EBADMSG);
	free(resp);
}

static const uint8_t page_types[] = {MID_REQ_LIST, MID_REQ_SESSIONS, MID_REQ_AUDIT,
				     MID_REQ_REQUESTS};

/* A page with more entries than its array can store is neither encoded
 * nor decoded. */
static void response_page_count_too_large(void **state)
{
	for (size_t kind = 0; kind < MID_ELEMENTSOF(page_types); kind++) {
		struct mid_response *resp = page_response_new(kind, page_max[kind]);
		uint8_t frame[MID_FRAME_MAX];
		struct writer w;

		print_message("# reply type %u\n", page_types[kind]);
		assert_int_equal(resp->type, page_types[kind]);
		resp->count = page_max[kind] + 1;
		assert_int_equal(mid_response_encode(resp, frame, sizeof(frame)), -EMSGSIZE);

		writer_init(&w, frame, sizeof(frame));
		writer_put_u8(&w, MID_PROTOCOL_VERSION);
		writer_put_u8(&w, page_types[kind]);
		writer_put_u8(&w, MID_OK);
		writer_put_str(&w, "");
		writer_put_str(&w, "");
		writer_put_u32(&w, 100);
		writer_put_u8(&w, page_max[kind] + 1);
		assert_int_equal(w.error, 0);
		assert_int_equal(mid_response_decode(frame, w.pos, resp), -EMSGSIZE);
		free(resp);
	}
}

static void response_lease_state_range(void **state)
{
	struct mid_response *resp = response_new(MID_REQ_VERIFY, MID_OK);
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n;

	fill_lease(&resp->lease, 2);
	resp->lease.state = MID_LEASE_EXPIRED;
	n = mid_response_encode(resp, frame, sizeof(frame));
	assert_true(n > 0);
	assert_int_equal(mid_response_decode(frame, (size_t)n, resp), 0);

	fill_lease(&resp->lease, 2);
	resp->lease.state = MID_LEASE_EXPIRED + 1;
	n = mid_response_encode(resp, frame, sizeof(frame));
	assert_true(n > 0);
	assert_int_equal(mid_response_decode(frame, (size_t)n, resp), -EBADMSG);
	free(resp);
}

static void response_list_entry_state_range(void **state)
{
	struct mid_response *resp = list_response_new(4);
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n;
	int r;

	resp->entries[3].state = 0xff;
	n = mid_response_encode(resp, frame, sizeof(frame));
	assert_true(n > 0);
	r = mid_response_decode(frame, (size_t)n, resp);
	free(resp);
	assert_int_equal(r, -EBADMSG);
}

/* A failed decode clears the whole response, credential included. */
static void response_failure_clears_output(void **state)
{
	struct mid_response *resp = issue_response_new();
	struct mid_response *zero = calloc(1, sizeof(*zero));
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n = mid_response_encode(resp, frame, sizeof(frame));

	assert_non_null(zero);
	assert_true(n > 1);
	assert_int_equal(mid_response_decode(frame, (size_t)n - 1, resp), -EBADMSG);
	assert_memory_equal(resp, zero, sizeof(*resp));
	free(zero);
	free(resp);
}

static void response_encode_no_room(void **state)
{
	struct mid_response *resp = list_response_new(2);
	uint8_t frame[MID_FRAME_MAX];
	ssize_t n = mid_response_encode(resp, frame, sizeof(frame));

	assert_true(n > 3);
	for (size_t size = 0; size < (size_t)n; size++)
		assert_int_equal(mid_response_encode(resp, frame, size), -EMSGSIZE);
	free(resp);
}

/* Every string of every entry at its maximum length. */
static void fill_page_to_max(struct mid_response *resp)
{
	memset(resp->message, 'm', MID_TEXT_MAX);
	memset(resp->id, 'i', MID_ID_MAX);
	for (size_t i = 0; i < MID_LIST_PAGE; i++) {
		struct mid_lease_info *l = &resp->entries[i];
		struct mid_approval_info *a = &resp->approvals[i];

		memset(l->lease, 'a', MID_LEASE_ID_MAX);
		memset(l->account, 'b', MID_NAME_MAX);
		memset(l->class_name, 'c', MID_NAME_MAX);
		memset(l->reason, 'd', MID_TEXT_MAX);
		memset(l->services, 'e', MID_TEXT_MAX);
		memset(l->sources, 'f', MID_TEXT_MAX);
		memset(a->id, 'a', MID_ID_MAX);
		memset(a->account, 'b', MID_NAME_MAX);
		memset(a->class_name, 'c', MID_NAME_MAX);
		memset(a->reason, 'd', MID_TEXT_MAX);
	}
	for (size_t i = 0; i < MID_SESSION_PAGE; i++) {
		struct mid_session_info *session = &resp->sessions[i];

		memset(session->id, 'a', MID_ID_MAX);
		memset(session->account, 'b', MID_NAME_MAX);
		memset(session->lease, 'c', MID_LEASE_ID_MAX);
		memset(session->service, 'd', MID_SERVICE_MAX);
		memset(session->rhost, 'e', MID_HOST_MAX);
		memset(session->tty, 'f', MID_TTY_MAX);
		memset(session->logind_id, 'g', MID_NAME_MAX);
	}
	for (size_t i = 0; i < MID_AUDIT_PAGE; i++) {
		struct mid_audit_info *record = &resp->audit[i];

		memset(record->event, 'a', MID_NAME_MAX);
		memset(record->account, 'b', MID_NAME_MAX);
		memset(record->lease, 'c', MID_LEASE_ID_MAX);
		memset(record->detail, 'd', MID_TEXT_MAX);
		memset(record->hash, 'e', sizeof(record->hash) - 1);
	}
}

/* A full page with every string at its maximum fits in MID_FRAME_MAX, so
 * the agent can always send a full page. */
static void response_full_page_fits(void **state)
{
	for (size_t kind = 0; kind < MID_ELEMENTSOF(page_types); kind++) {
		struct mid_response *resp = page_response_new(kind, page_max[kind]);
		static uint8_t frame[MID_FRAME_MAX];
		ssize_t n;

		fill_page_to_max(resp);
		n = mid_response_encode(resp, frame, sizeof(frame));
		print_message("# reply type %u: %zd bytes\n", page_types[kind], n);
		assert_true(n > 0);
		assert_true(n <= MID_FRAME_MAX);
		free(resp);
	}
}

static void status_strings(void **state)
{
	for (unsigned s = 0; s < _MID_STATUS_MAX; s++) {
		assert_non_null(mid_status_to_string(s));
		assert_string_not_equal(mid_status_to_string(s), "unknown status");
		assert_string_not_equal(mid_status_to_name(s), "unknown");
	}
	assert_string_equal(mid_status_to_string(_MID_STATUS_MAX), "unknown status");
	assert_string_equal(mid_status_to_name(_MID_STATUS_MAX), "unknown");
	assert_string_equal(mid_status_to_name(MID_ERR_NOT_FOUND), "not-found");
	assert_string_equal(mid_lease_state_to_string(MID_LEASE_REVOKED), "revoked");
	assert_string_equal(mid_lease_state_to_string(MID_LEASE_EXPIRED + 1), "unknown");
	assert_string_equal(mid_request_type_to_string(MID_REQ_SESSION_OPEN), "session-open");
	assert_string_equal(mid_request_type_to_string(0), "unknown");
	assert_string_equal(mid_request_type_to_string(_MID_REQ_MAX), "unknown");
	for (unsigned type = 1; type < _MID_REQ_MAX; type++)
		assert_string_not_equal(mid_request_type_to_string(type), "unknown");
	assert_string_equal(mid_session_state_to_string(MID_SESSION_TERMINATED), "terminated");
	assert_string_equal(mid_session_state_to_string(MID_SESSION_TERMINATED + 1), "unknown");
	assert_string_equal(mid_approval_state_to_string(4), "collected");
	assert_string_equal(mid_approval_state_to_string(5), "unknown");
}

static void cursor_little_endian(void **state)
{
	static const uint8_t bytes[] = {
		0x34, 0x12,                                     /* u16 */
		0x78, 0x56, 0x34, 0x12,                         /* u32 */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* i64 */
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* i64 -2 */
		0xff, 0xff, 0xff, 0xff,                         /* u32 max */
	};
	struct cursor c;

	cursor_init(&c, bytes, sizeof(bytes));
	assert_int_equal(cursor_get_u16(&c), 0x1234);
	assert_int_equal(cursor_get_u32(&c), 0x12345678);
	assert_int_equal(cursor_get_i64(&c), INT64_C(0x0102030405060708));
	assert_int_equal(cursor_get_i64(&c), -2);
	assert_int_equal(cursor_get_u32(&c), UINT32_MAX);
	assert_int_equal(c.error, 0);
	assert_int_equal(cursor_finish(&c), 0);
}

static void writer_little_endian(void **state)
{
	static const uint8_t expected[] = {
		0xab,
		0x34, 0x12,
		0x78, 0x56, 0x34, 0x12,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x03, 0x00, 'a', 'b', 'c',
		0x00, 0x00,
	};
	uint8_t buf[sizeof(expected)];
	struct writer w;

	writer_init(&w, buf, sizeof(buf));
	writer_put_u8(&w, 0xab);
	writer_put_u16(&w, 0x1234);
	writer_put_u32(&w, 0x12345678);
	writer_put_i64(&w, INT64_C(0x0102030405060708));
	writer_put_i64(&w, -2);
	writer_put_str(&w, "abc");
	writer_put_str(&w, NULL);

	assert_int_equal(w.error, 0);
	assert_int_equal(w.pos, sizeof(expected));
	assert_memory_equal(buf, expected, sizeof(expected));
}

static void cursor_sticky_error(void **state)
{
	static const uint8_t bytes[] = {0x01, 0x02, 0x03};
	struct cursor c;

	cursor_init(&c, bytes, sizeof(bytes));
	assert_int_equal(cursor_get_u16(&c), 0x0201);
	assert_int_equal(cursor_get_u32(&c), 0);
	assert_int_equal(c.error, -EBADMSG);
	assert_int_equal(c.pos, 2);

	/* A byte is left, but the first failure sticks. */
	assert_int_equal(cursor_get_u8(&c), 0);
	assert_int_equal(c.pos, 2);
	assert_int_equal(cursor_finish(&c), -EBADMSG);
}

static void cursor_finish_cases(void **state)
{
	static const uint8_t bytes[] = {0x01, 0x02};
	struct cursor c;

	cursor_init(&c, bytes, sizeof(bytes));
	assert_int_equal(cursor_finish(&c), -EBADMSG);
	(void)cursor_get_u8(&c);
	assert_int_equal(cursor_finish(&c), -EBADMSG);
	(void)cursor_get_u8(&c);
	assert_int_equal(cursor_finish(&c), 0);

	cursor_init(&c, NULL, 0);
	assert_int_equal(cursor_finish(&c), 0);
	assert_int_equal(cursor_get_u8(&c), 0);
	assert_int_equal(cursor_finish(&c), -EBADMSG);
}

static void cursor_string_cases(void **state)
{
	static const uint8_t good[] = {0x03, 0x00, 'a', 'b', 'c'};
	static const uint8_t with_nul[] = {0x03, 0x00, 'a', '\0', 'c'};
	static const uint8_t short_body[] = {0x04, 0x00, 'a', 'b', 'c'};
	const char *s;
	size_t len;
	char out[4];
	struct cursor c;

	cursor_init(&c, good, sizeof(good));
	cursor_get_str(&c, 3, &s, &len);
	assert_int_equal(c.error, 0);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "abc", 3);

	cursor_init(&c, good, sizeof(good));
	cursor_get_str(&c, 2, &s, &len);
	assert_int_equal(c.error, -EMSGSIZE);
	assert_int_equal(len, 0);
	assert_string_equal(s, "");
	assert_int_equal(cursor_finish(&c), -EMSGSIZE);

	cursor_init(&c, with_nul, sizeof(with_nul));
	cursor_get_str(&c, 10, &s, &len);
	assert_int_equal(c.error, -EBADMSG);
	assert_int_equal(len, 0);

	cursor_init(&c, short_body, sizeof(short_body));
	cursor_get_str(&c, 10, &s, &len);
	assert_int_equal(c.error, -EBADMSG);

	cursor_init(&c, good, sizeof(good));
	memset(out, 'x', sizeof(out));
	cursor_get_cstr(&c, out, sizeof(out));
	assert_int_equal(c.error, 0);
	assert_string_equal(out, "abc");

	cursor_init(&c, good, sizeof(good));
	memset(out, 'x', sizeof(out));
	cursor_get_cstr(&c, out, 3);
	assert_int_equal(c.error, -EMSGSIZE);
	assert_string_equal(out, "");
}

static void writer_overflow(void **state)
{
	uint8_t buf[3];
	struct writer w;

	writer_init(&w, buf, sizeof(buf));
	writer_put_u16(&w, 1);
	writer_put_u16(&w, 2);
	assert_int_equal(w.error, -EMSGSIZE);
	assert_int_equal(w.pos, 2);

	/* One byte would fit, but the first failure sticks. */
	writer_put_u8(&w, 3);
	assert_int_equal(w.pos, 2);
	assert_int_equal(w.error, -EMSGSIZE);
}

static void writer_string_too_long(void **state)
{
	static char big[UINT16_MAX + 1];
	uint8_t buf[8];
	struct writer w;

	writer_init(&w, buf, sizeof(buf));
	writer_put_strn(&w, big, sizeof(big));
	assert_int_equal(w.error, -EMSGSIZE);
	assert_int_equal(w.pos, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_round_trip),
		cmocka_unit_test(request_all_fields_round_trip),
		cmocka_unit_test(request_wire_bytes),
		cmocka_unit_test(request_truncated),
		cmocka_unit_test(request_trailing_byte),
		cmocka_unit_test(request_wrong_version),
		cmocka_unit_test(request_unknown_type),
		cmocka_unit_test(request_string_too_long),
		cmocka_unit_test(request_credential_too_long),
		cmocka_unit_test(request_nul_in_string),
		cmocka_unit_test(request_failure_keeps_output),
		cmocka_unit_test(request_encode_no_room),
		cmocka_unit_test(request_wipe_credential),
		cmocka_unit_test(response_wipe_credential),
		cmocka_unit_test(response_issue_round_trip),
		cmocka_unit_test(response_lease_round_trip),
		cmocka_unit_test(response_status_round_trip),
		cmocka_unit_test(response_collect_round_trip),
		cmocka_unit_test(response_detail_round_trip),
		cmocka_unit_test(response_pages_round_trip),
		cmocka_unit_test(response_pending_round_trip),
		cmocka_unit_test(response_session_close_round_trip),
		cmocka_unit_test(response_error_carries_message),
		cmocka_unit_test(response_truncated),
		cmocka_unit_test(response_trailing_byte),
		cmocka_unit_test(response_wrong_version),
		cmocka_unit_test(response_unknown_type),
		cmocka_unit_test(response_unknown_status),
		cmocka_unit_test(response_message_too_long),
		cmocka_unit_test(response_nul_in_credential),
		cmocka_unit_test(response_page_count_too_large),
		cmocka_unit_test(response_lease_state_range),
		cmocka_unit_test(response_list_entry_state_range),
		cmocka_unit_test(response_failure_clears_output),
		cmocka_unit_test(response_encode_no_room),
		cmocka_unit_test(response_full_page_fits),
		cmocka_unit_test(status_strings),
		cmocka_unit_test(cursor_little_endian),
		cmocka_unit_test(writer_little_endian),
		cmocka_unit_test(cursor_sticky_error),
		cmocka_unit_test(cursor_finish_cases),
		cmocka_unit_test(cursor_string_cases),
		cmocka_unit_test(writer_overflow),
		cmocka_unit_test(writer_string_too_long),
	};

	return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}

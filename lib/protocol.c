/* Encoding and bounded decoding of the agent's wire protocol. Each
 * message type lists its fields in a table, and one loop encodes or
 * decodes any table, so both directions always agree. */
#include "protocol.h"

#include <stddef.h>
#include <string.h>

#include "cursor.h"

enum field_kind {
	FIELD_STR,
	FIELD_U8,
	FIELD_U32,
	FIELD_I64,
};

struct field {
	uint8_t kind;
	uint16_t offset;
	uint16_t size; /* for strings: the buffer size, NUL included */
};

#define FIELD(type, kind, member)                                                                  \
	{ kind, offsetof(type, member), sizeof(((type *)0)->member) }
#define REQ_STR(m) FIELD(struct mid_request, FIELD_STR, m)
#define REQ_U32(m) FIELD(struct mid_request, FIELD_U32, m)
#define REQ_I64(m) FIELD(struct mid_request, FIELD_I64, m)

static const struct field issue_fields[] = {
	REQ_STR(account), REQ_STR(class_name), REQ_U32(ttl),      REQ_U32(uses),
	REQ_U32(flags),   REQ_STR(reason),     REQ_STR(services), REQ_STR(sources),
};
static const struct field verify_fields[] = {
	REQ_STR(account), REQ_STR(credential), REQ_STR(service), REQ_STR(rhost), REQ_STR(tty),
};
static const struct field account_fields[] = {
	REQ_STR(account), REQ_STR(lease), REQ_STR(service), REQ_STR(rhost), REQ_STR(tty),
};
static const struct field revoke_fields[] = {REQ_STR(lease), REQ_STR(reason)};
static const struct field renew_fields[] = {REQ_STR(lease), REQ_U32(ttl)};
static const struct field offset_fields[] = {REQ_U32(offset)};
static const struct field session_fields[] = {
	REQ_STR(account), REQ_STR(lease),      REQ_STR(service), REQ_STR(rhost),
	REQ_STR(tty),     REQ_STR(session_id), REQ_U32(pid),
};
static const struct field id_reason_fields[] = {REQ_STR(id), REQ_STR(reason)};
static const struct field id_fields[] = {REQ_STR(id)};
static const struct field unlock_fields[] = {REQ_STR(account), REQ_STR(rhost)};
static const struct field explain_fields[] = {
	REQ_STR(account), REQ_STR(class_name), REQ_STR(service),
	REQ_STR(rhost),   REQ_I64(at),         REQ_STR(as_user),
};
static const struct field audit_fields[] = {
	REQ_I64(since), REQ_I64(until), REQ_STR(account), REQ_U32(offset),
};
static const struct field sign_fields[] = {REQ_STR(credential)};

struct field_table {
	const struct field *fields;
	size_t n;
};

#define TABLE(f) {f, MID_ELEMENTSOF(f)}

static const struct field_table request_tables[_MID_REQ_MAX] = {
	[MID_REQ_ISSUE] = TABLE(issue_fields),
	[MID_REQ_VERIFY] = TABLE(verify_fields),
	[MID_REQ_ACCOUNT] = TABLE(account_fields),
	[MID_REQ_REVOKE] = TABLE(revoke_fields),
	[MID_REQ_RENEW] = TABLE(renew_fields),
	[MID_REQ_LIST] = TABLE(offset_fields),
	[MID_REQ_STATUS] = {NULL, 0},
	[MID_REQ_SESSION_OPEN] = TABLE(session_fields),
	[MID_REQ_SESSION_CLOSE] = TABLE(session_fields),
	[MID_REQ_APPROVE] = TABLE(id_reason_fields),
	[MID_REQ_DENY] = TABLE(id_reason_fields),
	[MID_REQ_COLLECT] = TABLE(id_fields),
	[MID_REQ_UNLOCK] = TABLE(unlock_fields),
	[MID_REQ_RELOAD] = {NULL, 0},
	[MID_REQ_EXPLAIN] = TABLE(explain_fields),
	[MID_REQ_SESSIONS] = TABLE(offset_fields),
	[MID_REQ_KILL] = TABLE(id_reason_fields),
	[MID_REQ_AUDIT] = TABLE(audit_fields),
	[MID_REQ_AUDIT_VERIFY] = {NULL, 0},
	[MID_REQ_AUDIT_SIGN] = TABLE(sign_fields),
	[MID_REQ_REQUESTS] = TABLE(offset_fields),
};

#define LEASE_STR(m) FIELD(struct mid_lease_info, FIELD_STR, m)
#define LEASE_U8(m) FIELD(struct mid_lease_info, FIELD_U8, m)
#define LEASE_U32(m) FIELD(struct mid_lease_info, FIELD_U32, m)
#define LEASE_I64(m) FIELD(struct mid_lease_info, FIELD_I64, m)
static const struct field lease_fields[] = {
	LEASE_STR(lease),     LEASE_STR(account),        LEASE_STR(class_name),
	LEASE_U32(uid),       LEASE_U32(gid),            LEASE_I64(created_at),
	LEASE_I64(expires_at), LEASE_I64(max_expires_at), LEASE_U32(max_uses),
	LEASE_U32(uses),      LEASE_U32(requester_uid),  LEASE_U8(state),
	LEASE_STR(reason),    LEASE_STR(services),       LEASE_STR(sources),
};

#define SESSION_STR(m) FIELD(struct mid_session_info, FIELD_STR, m)
static const struct field session_info_fields[] = {
	SESSION_STR(id),
	SESSION_STR(account),
	SESSION_STR(lease),
	SESSION_STR(service),
	SESSION_STR(rhost),
	SESSION_STR(tty),
	SESSION_STR(logind_id),
	FIELD(struct mid_session_info, FIELD_U32, pid),
	FIELD(struct mid_session_info, FIELD_I64, started_at),
	FIELD(struct mid_session_info, FIELD_I64, deadline),
	FIELD(struct mid_session_info, FIELD_U8, state),
};

#define AUDIT_STR(m) FIELD(struct mid_audit_info, FIELD_STR, m)
#define AUDIT_I64(m) FIELD(struct mid_audit_info, FIELD_I64, m)
static const struct field audit_info_fields[] = {
	AUDIT_I64(seq),    AUDIT_I64(at),       AUDIT_STR(event),  AUDIT_STR(account),
	AUDIT_STR(lease),  AUDIT_I64(peer_uid), AUDIT_STR(detail), AUDIT_STR(hash),
};

#define APPROVAL_STR(m) FIELD(struct mid_approval_info, FIELD_STR, m)
#define APPROVAL_U32(m) FIELD(struct mid_approval_info, FIELD_U32, m)
#define APPROVAL_I64(m) FIELD(struct mid_approval_info, FIELD_I64, m)
static const struct field approval_info_fields[] = {
	APPROVAL_STR(id),
	APPROVAL_STR(account),
	APPROVAL_STR(class_name),
	APPROVAL_U32(requester_uid),
	APPROVAL_U32(approvals),
	APPROVAL_U32(required),
	APPROVAL_I64(created_at),
	APPROVAL_I64(expires_at),
	FIELD(struct mid_approval_info, FIELD_U8, state),
	APPROVAL_STR(reason),
};

#define STATUS_STR(m) FIELD(struct mid_agent_status, FIELD_STR, m)
static const struct field status_fields[] = {
	FIELD(struct mid_agent_status, FIELD_U32, pid),
	FIELD(struct mid_agent_status, FIELD_I64, started_at),
	FIELD(struct mid_agent_status, FIELD_U32, live_leases),
	FIELD(struct mid_agent_status, FIELD_U32, total_leases),
	STATUS_STR(version),
	STATUS_STR(config_path),
	STATUS_STR(state_dir),
	STATUS_STR(runtime_dir),
};

static void put_fields(struct writer *w, const void *obj, const struct field *f, size_t n)
{
	const uint8_t *base = obj;

	for (size_t i = 0; i < n; i++) {
		const void *p = base + f[i].offset;

		switch (f[i].kind) {
		case FIELD_STR:
			writer_put_strn(w, p, strnlen(p, f[i].size - 1));
			break;
		case FIELD_U8:
			writer_put_u8(w, *(const uint8_t *)p);
			break;
		case FIELD_U32:
			writer_put_u32(w, *(const uint32_t *)p);
			break;
		case FIELD_I64:
			writer_put_i64(w, *(const int64_t *)p);
			break;
		}
	}
}

static void get_fields(struct cursor *c, void *obj, const struct field *f, size_t n)
{
	uint8_t *base = obj;

	for (size_t i = 0; i < n && c->error == 0; i++) {
		void *p = base + f[i].offset;

		switch (f[i].kind) {
		case FIELD_STR:
			cursor_get_cstr(c, p, f[i].size);
			break;
		case FIELD_U8:
			*(uint8_t *)p = cursor_get_u8(c);
			break;
		case FIELD_U32:
			*(uint32_t *)p = cursor_get_u32(c);
			break;
		case FIELD_I64:
			*(int64_t *)p = cursor_get_i64(c);
			break;
		}
	}
}

ssize_t mid_request_encode(const struct mid_request *req, void *buf, size_t size)
{
	const struct field_table *t;
	struct writer w;

	if (req->type == 0 || req->type >= _MID_REQ_MAX)
		return -EOPNOTSUPP;
	t = &request_tables[req->type];

	writer_init(&w, buf, size);
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, req->type);
	put_fields(&w, req, t->fields, t->n);
	if (w.error < 0)
		return w.error;
	return (ssize_t)w.pos;
}

int mid_request_decode(const void *buf, size_t size, struct mid_request *ret)
{
	struct mid_request req = {0};
	const struct field_table *t;
	struct cursor c;
	uint8_t version;
	int r;

	cursor_init(&c, buf, size);
	version = cursor_get_u8(&c);
	req.type = cursor_get_u8(&c);
	if (c.error < 0)
		return c.error;
	if (version != MID_PROTOCOL_VERSION)
		return -EPROTO;
	if (req.type == 0 || req.type >= _MID_REQ_MAX)
		return -EOPNOTSUPP;
	t = &request_tables[req.type];

	get_fields(&c, &req, t->fields, t->n);
	r = cursor_finish(&c);
	if (r == 0)
		*ret = req;
	mid_request_wipe(&req);
	return r;
}

static bool type_returns_lease(uint8_t type)
{
	return type == MID_REQ_ISSUE || type == MID_REQ_VERIFY || type == MID_REQ_ACCOUNT ||
	       type == MID_REQ_REVOKE || type == MID_REQ_RENEW || type == MID_REQ_SESSION_OPEN ||
	       type == MID_REQ_COLLECT;
}

static bool type_returns_credential(uint8_t type)
{
	return type == MID_REQ_ISSUE || type == MID_REQ_COLLECT;
}

static bool type_returns_detail(uint8_t type)
{
	return type == MID_REQ_EXPLAIN || type == MID_REQ_AUDIT_VERIFY ||
	       type == MID_REQ_AUDIT_SIGN || type == MID_REQ_RELOAD;
}

/* The page a listing reply carries: its entry table, array and limit. */
static bool response_page(uint8_t type, struct mid_response *resp, const struct field **ret_fields,
			  size_t *ret_n, uint8_t **ret_entries, size_t *ret_entry_size,
			  size_t *ret_max)
{
	switch (type) {
	case MID_REQ_LIST:
		*ret_fields = lease_fields;
		*ret_n = MID_ELEMENTSOF(lease_fields);
		*ret_entries = (uint8_t *)resp->entries;
		*ret_entry_size = sizeof(resp->entries[0]);
		*ret_max = MID_LIST_PAGE;
		return true;
	case MID_REQ_SESSIONS:
		*ret_fields = session_info_fields;
		*ret_n = MID_ELEMENTSOF(session_info_fields);
		*ret_entries = (uint8_t *)resp->sessions;
		*ret_entry_size = sizeof(resp->sessions[0]);
		*ret_max = MID_SESSION_PAGE;
		return true;
	case MID_REQ_AUDIT:
		*ret_fields = audit_info_fields;
		*ret_n = MID_ELEMENTSOF(audit_info_fields);
		*ret_entries = (uint8_t *)resp->audit;
		*ret_entry_size = sizeof(resp->audit[0]);
		*ret_max = MID_AUDIT_PAGE;
		return true;
	case MID_REQ_REQUESTS:
		*ret_fields = approval_info_fields;
		*ret_n = MID_ELEMENTSOF(approval_info_fields);
		*ret_entries = (uint8_t *)resp->approvals;
		*ret_entry_size = sizeof(resp->approvals[0]);
		*ret_max = MID_LIST_PAGE;
		return true;
	default:
		return false;
	}
}

ssize_t mid_response_encode(const struct mid_response *resp, void *buf, size_t size)
{
	const struct field *fields;
	size_t n, entry_size, max;
	uint8_t *entries;
	struct writer w;

	writer_init(&w, buf, size);
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, resp->type);
	writer_put_u8(&w, resp->status);
	writer_put_str(&w, resp->message);
	writer_put_str(&w, resp->id);
	/* Detail also explains a refusal, such as the errors of a reload. */
	if (type_returns_detail(resp->type))
		writer_put_str(&w, resp->detail);

	if (resp->status == MID_OK) {
		if (type_returns_lease(resp->type))
			put_fields(&w, &resp->lease, lease_fields, MID_ELEMENTSOF(lease_fields));
		if (type_returns_credential(resp->type))
			writer_put_str(&w, resp->credential);
		if (resp->type == MID_REQ_STATUS)
			put_fields(&w, &resp->agent, status_fields, MID_ELEMENTSOF(status_fields));
		if (response_page(resp->type, (struct mid_response *)resp, &fields, &n, &entries,
				  &entry_size, &max)) {
			if (resp->count > max)
				return -EMSGSIZE;
			writer_put_u32(&w, resp->total);
			writer_put_u8(&w, resp->count);
			for (size_t i = 0; i < resp->count; i++)
				put_fields(&w, entries + i * entry_size, fields, n);
		}
	}

	if (w.error < 0)
		return w.error;
	return (ssize_t)w.pos;
}

/* Checks the enumerated state byte of every entry of a decoded page. */
static bool page_states_valid(const struct mid_response *resp)
{
	for (size_t i = 0; i < resp->count; i++) {
		if (resp->type == MID_REQ_LIST && resp->entries[i].state > MID_LEASE_EXPIRED)
			return false;
		if (resp->type == MID_REQ_SESSIONS && resp->sessions[i].state > MID_SESSION_TERMINATED)
			return false;
		if (resp->type == MID_REQ_REQUESTS && resp->approvals[i].state > MID_APPROVAL_COLLECTED)
			return false;
	}
	return true;
}

/* The response is large (a page of entries), so it is decoded in place and
 * cleared on failure rather than copied. */
int mid_response_decode(const void *buf, size_t size, struct mid_response *ret)
{
	const struct field *fields;
	size_t n, entry_size, max;
	uint8_t *entries;
	struct cursor c;
	uint8_t version;
	int r;

	memset(ret, 0, sizeof(*ret));
	cursor_init(&c, buf, size);
	version = cursor_get_u8(&c);
	ret->type = cursor_get_u8(&c);
	ret->status = cursor_get_u8(&c);
	if (c.error == 0 && version != MID_PROTOCOL_VERSION)
		c.error = -EPROTO;
	if (c.error == 0 && (ret->type == 0 || ret->type >= _MID_REQ_MAX))
		c.error = -EOPNOTSUPP;
	if (c.error == 0 && ret->status >= _MID_STATUS_MAX)
		c.error = -EBADMSG;
	cursor_get_cstr(&c, ret->message, sizeof(ret->message));
	cursor_get_cstr(&c, ret->id, sizeof(ret->id));
	if (c.error == 0 && type_returns_detail(ret->type))
		cursor_get_cstr(&c, ret->detail, sizeof(ret->detail));

	if (c.error == 0 && ret->status == MID_OK) {
		if (type_returns_lease(ret->type)) {
			get_fields(&c, &ret->lease, lease_fields, MID_ELEMENTSOF(lease_fields));
			if (c.error == 0 && ret->lease.state > MID_LEASE_EXPIRED)
				c.error = -EBADMSG;
		}
		if (type_returns_credential(ret->type))
			cursor_get_cstr(&c, ret->credential, sizeof(ret->credential));
		if (ret->type == MID_REQ_STATUS)
			get_fields(&c, &ret->agent, status_fields, MID_ELEMENTSOF(status_fields));
		if (response_page(ret->type, ret, &fields, &n, &entries, &entry_size, &max)) {
			ret->total = cursor_get_u32(&c);
			ret->count = cursor_get_u8(&c);
			if (c.error == 0 && ret->count > max)
				c.error = -EMSGSIZE;
			for (size_t i = 0; c.error == 0 && i < ret->count; i++)
				get_fields(&c, entries + i * entry_size, fields, n);
			if (c.error == 0 && !page_states_valid(ret))
				c.error = -EBADMSG;
		}
	}

	r = cursor_finish(&c);
	if (r == 0)
		return 0;
	mid_response_wipe(ret);
	memset(ret, 0, sizeof(*ret));
	return r;
}

void mid_request_wipe(struct mid_request *req)
{
	explicit_bzero(req->credential, sizeof(req->credential));
}

void mid_response_wipe(struct mid_response *resp)
{
	explicit_bzero(resp->credential, sizeof(resp->credential));
}

static const char *const status_strings[_MID_STATUS_MAX] = {
	[MID_OK] = "success",
	[MID_ERR_DENIED] = "denied by policy",
	[MID_ERR_NOT_FOUND] = "not found",
	[MID_ERR_BAD_CREDENTIAL] = "invalid credential",
	[MID_ERR_EXPIRED] = "lease expired",
	[MID_ERR_REVOKED] = "lease revoked",
	[MID_ERR_INVALID] = "invalid request",
	[MID_ERR_UNMANAGED] = "account not managed by mid",
	[MID_ERR_PERMISSION] = "permission denied",
	[MID_ERR_LOCKED] = "locked after repeated failures",
	[MID_ERR_NO_SPACE] = "state could not be written",
	[MID_ERR_INTERNAL] = "internal error in mid-agentd",
	[MID_ERR_VERSION] = "unsupported protocol version",
	[MID_ERR_EXHAUSTED] = "credential has no uses left",
	[MID_ERR_UNAVAILABLE] = "mid-agentd unreachable",
	[MID_PENDING] = "waiting for approval",
	[MID_ERR_LIMIT] = "limit reached",
};

static const char *const status_names[_MID_STATUS_MAX] = {
	[MID_OK] = "ok",
	[MID_ERR_DENIED] = "denied",
	[MID_ERR_NOT_FOUND] = "not-found",
	[MID_ERR_BAD_CREDENTIAL] = "bad-credential",
	[MID_ERR_EXPIRED] = "expired",
	[MID_ERR_REVOKED] = "revoked",
	[MID_ERR_INVALID] = "invalid",
	[MID_ERR_UNMANAGED] = "unmanaged",
	[MID_ERR_PERMISSION] = "permission",
	[MID_ERR_LOCKED] = "locked",
	[MID_ERR_NO_SPACE] = "no-space",
	[MID_ERR_INTERNAL] = "internal",
	[MID_ERR_VERSION] = "version",
	[MID_ERR_EXHAUSTED] = "exhausted",
	[MID_ERR_UNAVAILABLE] = "unavailable",
	[MID_PENDING] = "pending",
	[MID_ERR_LIMIT] = "limit",
};

const char *mid_status_to_string(enum mid_status status)
{
	if ((unsigned)status >= _MID_STATUS_MAX)
		return "unknown status";
	return status_strings[status];
}

const char *mid_status_to_name(enum mid_status status)
{
	if ((unsigned)status >= _MID_STATUS_MAX)
		return "unknown";
	return status_names[status];
}

const char *mid_lease_state_to_string(enum mid_lease_state state)
{
	switch (state) {
	case MID_LEASE_LIVE:
		return "live";
	case MID_LEASE_REVOKED:
		return "revoked";
	case MID_LEASE_EXPIRED:
		return "expired";
	}
	return "unknown";
}

const char *mid_session_state_to_string(enum mid_session_state state)
{
	switch (state) {
	case MID_SESSION_OPEN:
		return "open";
	case MID_SESSION_CLOSED:
		return "closed";
	case MID_SESSION_TERMINATED:
		return "terminated";
	}
	return "unknown";
}

const char *mid_approval_state_to_string(uint8_t state)
{
	static const char *const names[] = {"pending", "approved", "denied", "expired",
					    "collected"};

	return state < MID_ELEMENTSOF(names) ? names[state] : "unknown";
}

const char *mid_request_type_to_string(enum mid_request_type type)
{
	static const char *const names[_MID_REQ_MAX] = {
		[MID_REQ_ISSUE] = "issue",
		[MID_REQ_VERIFY] = "verify",
		[MID_REQ_ACCOUNT] = "account",
		[MID_REQ_REVOKE] = "revoke",
		[MID_REQ_RENEW] = "renew",
		[MID_REQ_LIST] = "list",
		[MID_REQ_STATUS] = "status",
		[MID_REQ_SESSION_OPEN] = "session-open",
		[MID_REQ_SESSION_CLOSE] = "session-close",
		[MID_REQ_APPROVE] = "approve",
		[MID_REQ_DENY] = "deny",
		[MID_REQ_COLLECT] = "collect",
		[MID_REQ_UNLOCK] = "unlock",
		[MID_REQ_RELOAD] = "reload",
		[MID_REQ_EXPLAIN] = "explain",
		[MID_REQ_SESSIONS] = "sessions",
		[MID_REQ_KILL] = "kill",
		[MID_REQ_AUDIT] = "audit",
		[MID_REQ_AUDIT_VERIFY] = "audit-verify",
		[MID_REQ_AUDIT_SIGN] = "audit-sign",
		[MID_REQ_REQUESTS] = "requests",
	};

	if ((unsigned)type == 0 || (unsigned)type >= _MID_REQ_MAX)
		return "unknown";
	return names[type];
}

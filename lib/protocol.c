/* Encoding and bounded decoding of the agent's wire protocol. */
#include "protocol.h"

#include <string.h>

#include "cursor.h"

static void put_lease(struct writer *w, const struct mid_lease_info *l)
{
	writer_put_str(w, l->lease);
	writer_put_str(w, l->account);
	writer_put_str(w, l->class_name);
	writer_put_u32(w, l->uid);
	writer_put_u32(w, l->gid);
	writer_put_i64(w, l->created_at);
	writer_put_i64(w, l->expires_at);
	writer_put_i64(w, l->max_expires_at);
	writer_put_u32(w, l->max_uses);
	writer_put_u32(w, l->uses);
	writer_put_u32(w, l->requester_uid);
	writer_put_u8(w, l->state);
	writer_put_str(w, l->reason);
}

static void get_lease(struct cursor *c, struct mid_lease_info *l)
{
	cursor_get_cstr(c, l->lease, sizeof(l->lease));
	cursor_get_cstr(c, l->account, sizeof(l->account));
	cursor_get_cstr(c, l->class_name, sizeof(l->class_name));
	l->uid = cursor_get_u32(c);
	l->gid = cursor_get_u32(c);
	l->created_at = cursor_get_i64(c);
	l->expires_at = cursor_get_i64(c);
	l->max_expires_at = cursor_get_i64(c);
	l->max_uses = cursor_get_u32(c);
	l->uses = cursor_get_u32(c);
	l->requester_uid = cursor_get_u32(c);
	l->state = cursor_get_u8(c);
	cursor_get_cstr(c, l->reason, sizeof(l->reason));
	if (c->error == 0 && l->state > MID_LEASE_EXPIRED)
		c->error = -EBADMSG;
}

ssize_t mid_request_encode(const struct mid_request *req, void *buf, size_t size)
{
	struct writer w;

	writer_init(&w, buf, size);
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, req->type);

	switch (req->type) {
	case MID_REQ_ISSUE:
		writer_put_str(&w, req->account);
		writer_put_str(&w, req->class_name);
		writer_put_u32(&w, req->ttl);
		writer_put_u32(&w, req->uses);
		writer_put_u32(&w, req->flags);
		writer_put_str(&w, req->reason);
		writer_put_str(&w, req->services);
		writer_put_str(&w, req->sources);
		break;
	case MID_REQ_VERIFY:
		writer_put_str(&w, req->account);
		writer_put_str(&w, req->credential);
		writer_put_str(&w, req->service);
		writer_put_str(&w, req->rhost);
		writer_put_str(&w, req->tty);
		break;
	case MID_REQ_ACCOUNT:
		writer_put_str(&w, req->account);
		writer_put_str(&w, req->lease);
		writer_put_str(&w, req->service);
		writer_put_str(&w, req->rhost);
		writer_put_str(&w, req->tty);
		break;
	case MID_REQ_REVOKE:
		writer_put_str(&w, req->lease);
		writer_put_str(&w, req->reason);
		break;
	case MID_REQ_RENEW:
		writer_put_str(&w, req->lease);
		writer_put_u32(&w, req->ttl);
		break;
	case MID_REQ_LIST:
		writer_put_u32(&w, req->offset);
		break;
	case MID_REQ_STATUS:
		break;
	case MID_REQ_SESSION_OPEN:
	case MID_REQ_SESSION_CLOSE:
		writer_put_str(&w, req->account);
		writer_put_str(&w, req->lease);
		writer_put_str(&w, req->service);
		writer_put_str(&w, req->rhost);
		writer_put_str(&w, req->tty);
		writer_put_str(&w, req->session_id);
		writer_put_u32(&w, req->pid);
		break;
	default:
		return -EOPNOTSUPP;
	}

	if (w.error < 0)
		return w.error;
	return (ssize_t)w.pos;
}

int mid_request_decode(const void *buf, size_t size, struct mid_request *ret)
{
	struct mid_request req = {0};
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

	switch (req.type) {
	case MID_REQ_ISSUE:
		cursor_get_cstr(&c, req.account, sizeof(req.account));
		cursor_get_cstr(&c, req.class_name, sizeof(req.class_name));
		req.ttl = cursor_get_u32(&c);
		req.uses = cursor_get_u32(&c);
		req.flags = cursor_get_u32(&c);
		cursor_get_cstr(&c, req.reason, sizeof(req.reason));
		cursor_get_cstr(&c, req.services, sizeof(req.services));
		cursor_get_cstr(&c, req.sources, sizeof(req.sources));
		break;
	case MID_REQ_VERIFY:
		cursor_get_cstr(&c, req.account, sizeof(req.account));
		cursor_get_cstr(&c, req.credential, sizeof(req.credential));
		cursor_get_cstr(&c, req.service, sizeof(req.service));
		cursor_get_cstr(&c, req.rhost, sizeof(req.rhost));
		cursor_get_cstr(&c, req.tty, sizeof(req.tty));
		break;
	case MID_REQ_ACCOUNT:
		cursor_get_cstr(&c, req.account, sizeof(req.account));
		cursor_get_cstr(&c, req.lease, sizeof(req.lease));
		cursor_get_cstr(&c, req.service, sizeof(req.service));
		cursor_get_cstr(&c, req.rhost, sizeof(req.rhost));
		cursor_get_cstr(&c, req.tty, sizeof(req.tty));
		break;
	case MID_REQ_REVOKE:
		cursor_get_cstr(&c, req.lease, sizeof(req.lease));
		cursor_get_cstr(&c, req.reason, sizeof(req.reason));
		break;
	case MID_REQ_RENEW:
		cursor_get_cstr(&c, req.lease, sizeof(req.lease));
		req.ttl = cursor_get_u32(&c);
		break;
	case MID_REQ_LIST:
		req.offset = cursor_get_u32(&c);
		break;
	case MID_REQ_STATUS:
		break;
	case MID_REQ_SESSION_OPEN:
	case MID_REQ_SESSION_CLOSE:
		cursor_get_cstr(&c, req.account, sizeof(req.account));
		cursor_get_cstr(&c, req.lease, sizeof(req.lease));
		cursor_get_cstr(&c, req.service, sizeof(req.service));
		cursor_get_cstr(&c, req.rhost, sizeof(req.rhost));
		cursor_get_cstr(&c, req.tty, sizeof(req.tty));
		cursor_get_cstr(&c, req.session_id, sizeof(req.session_id));
		req.pid = cursor_get_u32(&c);
		break;
	default:
		return -EOPNOTSUPP;
	}

	r = cursor_finish(&c);
	if (r < 0) {
		mid_request_wipe(&req);
		return r;
	}
	*ret = req;
	mid_request_wipe(&req);
	return 0;
}

static bool type_returns_lease(uint8_t type)
{
	return type == MID_REQ_ISSUE || type == MID_REQ_VERIFY || type == MID_REQ_ACCOUNT ||
	       type == MID_REQ_REVOKE || type == MID_REQ_RENEW || type == MID_REQ_SESSION_OPEN;
}

ssize_t mid_response_encode(const struct mid_response *resp, void *buf, size_t size)
{
	struct writer w;

	writer_init(&w, buf, size);
	writer_put_u8(&w, MID_PROTOCOL_VERSION);
	writer_put_u8(&w, resp->type);
	writer_put_u8(&w, resp->status);
	writer_put_str(&w, resp->message);

	if (resp->status == MID_OK) {
		if (type_returns_lease(resp->type))
			put_lease(&w, &resp->lease);
		if (resp->type == MID_REQ_ISSUE)
			writer_put_str(&w, resp->credential);
		if (resp->type == MID_REQ_LIST) {
			if (resp->count > MID_LIST_PAGE)
				return -EMSGSIZE;
			writer_put_u32(&w, resp->total);
			writer_put_u8(&w, resp->count);
			for (size_t i = 0; i < resp->count; i++)
				put_lease(&w, &resp->entries[i]);
		}
		if (resp->type == MID_REQ_STATUS) {
			writer_put_u32(&w, resp->agent.pid);
			writer_put_i64(&w, resp->agent.started_at);
			writer_put_u32(&w, resp->agent.live_leases);
			writer_put_u32(&w, resp->agent.total_leases);
			writer_put_str(&w, resp->agent.version);
			writer_put_str(&w, resp->agent.config_path);
			writer_put_str(&w, resp->agent.state_dir);
			writer_put_str(&w, resp->agent.runtime_dir);
		}
	}

	if (w.error < 0)
		return w.error;
	return (ssize_t)w.pos;
}

static void get_status(struct cursor *c, struct mid_agent_status *a)
{
	a->pid = cursor_get_u32(c);
	a->started_at = cursor_get_i64(c);
	a->live_leases = cursor_get_u32(c);
	a->total_leases = cursor_get_u32(c);
	cursor_get_cstr(c, a->version, sizeof(a->version));
	cursor_get_cstr(c, a->config_path, sizeof(a->config_path));
	cursor_get_cstr(c, a->state_dir, sizeof(a->state_dir));
	cursor_get_cstr(c, a->runtime_dir, sizeof(a->runtime_dir));
}

/* The response is large (a page of leases), so it is decoded in place and
 * cleared on failure rather than copied. */
int mid_response_decode(const void *buf, size_t size, struct mid_response *ret)
{
	struct cursor c;
	uint8_t version;
	int r;

	memset(ret, 0, sizeof(*ret));
	cursor_init(&c, buf, size);
	version = cursor_get_u8(&c);
	ret->type = cursor_get_u8(&c);
	ret->status = cursor_get_u8(&c);
	if (c.error < 0)
		goto fail;
	if (version != MID_PROTOCOL_VERSION) {
		c.error = -EPROTO;
		goto fail;
	}
	if (ret->type == 0 || ret->type >= _MID_REQ_MAX) {
		c.error = -EOPNOTSUPP;
		goto fail;
	}
	if (ret->status >= _MID_STATUS_MAX) {
		c.error = -EBADMSG;
		goto fail;
	}
	cursor_get_cstr(&c, ret->message, sizeof(ret->message));

	if (ret->status == MID_OK) {
		if (type_returns_lease(ret->type))
			get_lease(&c, &ret->lease);
		if (ret->type == MID_REQ_ISSUE)
			cursor_get_cstr(&c, ret->credential, sizeof(ret->credential));
		if (ret->type == MID_REQ_LIST) {
			ret->total = cursor_get_u32(&c);
			ret->count = cursor_get_u8(&c);
			if (c.error == 0 && ret->count > MID_LIST_PAGE)
				c.error = -EMSGSIZE;
			for (size_t i = 0; c.error == 0 && i < ret->count; i++)
				get_lease(&c, &ret->entries[i]);
		}
		if (ret->type == MID_REQ_STATUS)
			get_status(&c, &ret->agent);
	}

	r = cursor_finish(&c);
	if (r == 0)
		return 0;
fail:
	r = c.error < 0 ? c.error : -EBADMSG;
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
	};

	if ((unsigned)type == 0 || (unsigned)type >= _MID_REQ_MAX)
		return "unknown";
	return names[type];
}

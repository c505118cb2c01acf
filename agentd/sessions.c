/* Sessions opened with a lease: registration by pam_mid, listing, and
 * their end when the lease ends. */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "names.h"

int sessions_init(struct agent *a)
{
	return 0;
}

static void session_change(struct agent *a, const struct peer *peer, const struct mid_request *req,
			   struct mid_response *resp)
{
	bool open = req->type == MID_REQ_SESSION_OPEN;
	const struct rule *rule;
	char detail[MID_TEXT_MAX + 1];
	struct audit_record rec;
	int r;

	if (!name_is_valid(req->account)) {
		reply(resp, MID_ERR_INVALID, "invalid account name");
		return;
	}
	rule = policy_find_account(a->policy, req->account);
	if (!rule)
		rule = policy_find_class_of(a->policy, req->account);
	if (!peer_may_verify(a, peer, rule)) {
		reply(resp, MID_ERR_PERMISSION, "UID %u may not register sessions",
		      (unsigned)peer->uid);
		return;
	}
	if (!rule) {
		reply(resp, MID_ERR_UNMANAGED, "account is not managed by mid");
		return;
	}
	if (open && account_live_lease(a, req, resp) < 0)
		return;

	snprintf(detail, sizeof(detail), "service=%s tty=%s pid=%u", req->service, req->tty,
		 (unsigned)req->pid);
	rec = (struct audit_record){
		.event = open ? "session-open" : "session-close",
		.account = req->account,
		.lease = open ? resp->lease.lease : req->lease,
		.peer_uid = peer->uid,
		.detail = detail,
	};
	r = store_begin(a->store);
	if (r == 0)
		r = store_audit_append(a->store, now_realtime(), &rec);
	if (r == 0)
		r = store_commit(a->store);
	else
		store_rollback(a->store);
	if (r < 0)
		log_error("Failed to record a session in the audit log: %s", strerror(-r));
	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_SESSION,
				       .account = req->account,
				       .lease = rec.lease,
				       .service = req->service,
				       .rhost = req->rhost,
				       .peer_uid = peer->uid},
		  "Session %s for account %s", open ? "opened" : "closed", req->account);
	reply(resp, MID_OK, open ? "session opened" : "session closed");
}

void sessions_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		     struct mid_response *resp)
{
	switch (req->type) {
	case MID_REQ_SESSION_OPEN:
	case MID_REQ_SESSION_CLOSE:
		session_change(a, peer, req, resp);
		break;
	default:
		reply(resp, MID_ERR_INVALID, "session listing is not available yet");
		break;
	}
}

void sessions_on_lease_end(struct agent *a, const struct lease *l, const char *why)
{
}

void sessions_on_lease_renew(struct agent *a, const struct lease *l)
{
}

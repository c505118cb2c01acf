/* The agent's wire protocol. One request or reply per SOCK_SEQPACKET
 * message: version byte, type byte, then the fields of that type in a
 * fixed order (u16-length strings, little-endian integers). A reply adds a
 * status byte and a message after the type. Every frame is decoded through
 * struct cursor and rejected when short, oversized or followed by extra
 * bytes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define MID_PROTOCOL_VERSION 1
#define MID_FRAME_MAX 32768

#define MID_NAME_MAX 32 /* account, class and group names, as useradd limits them */
#define MID_LEASE_ID_MAX 32
#define MID_CREDENTIAL_MAX 128
#define MID_SERVICE_MAX 64
#define MID_HOST_MAX 255 /* PAM_RHOST: a host name or an address */
#define MID_TTY_MAX 64
#define MID_TEXT_MAX 255
#define MID_PATH_MAX 1024
#define MID_LIST_PAGE 32
#define MID_SESSION_PAGE 32
#define MID_AUDIT_PAGE 16
#define MID_ID_MAX 32     /* approval request and session ids */
#define MID_DETAIL_MAX 2047 /* multi-line text: explain, audit verification */

enum mid_request_type {
	MID_REQ_ISSUE = 1,
	MID_REQ_VERIFY = 2,
	MID_REQ_ACCOUNT = 3,
	MID_REQ_REVOKE = 4,
	MID_REQ_RENEW = 5,
	MID_REQ_LIST = 6,
	MID_REQ_STATUS = 7,
	MID_REQ_SESSION_OPEN = 8,
	MID_REQ_SESSION_CLOSE = 9,
	MID_REQ_APPROVE = 10,  /* id, reason */
	MID_REQ_DENY = 11,     /* id, reason */
	MID_REQ_COLLECT = 12,  /* id: the credential of an approved request */
	MID_REQ_UNLOCK = 13,   /* account and/or rhost */
	MID_REQ_RELOAD = 14,
	MID_REQ_EXPLAIN = 15,  /* account or class, service, rhost, at, as_user */
	MID_REQ_SESSIONS = 16, /* offset */
	MID_REQ_KILL = 17,     /* id: a session */
	MID_REQ_AUDIT = 18,    /* since, until, account, offset */
	MID_REQ_AUDIT_VERIFY = 19,
	MID_REQ_AUDIT_SIGN = 20, /* credential field carries the hex digest to sign */
	MID_REQ_REQUESTS = 21,   /* offset: pending approval requests */
	_MID_REQ_MAX,
};

enum mid_status {
	MID_OK = 0,
	MID_ERR_DENIED = 1,         /* the policy does not allow this */
	MID_ERR_NOT_FOUND = 2,      /* no such lease or account */
	MID_ERR_BAD_CREDENTIAL = 3, /* wrong, malformed or foreign credential */
	MID_ERR_EXPIRED = 4,
	MID_ERR_REVOKED = 5,
	MID_ERR_INVALID = 6,     /* a field of the request is invalid */
	MID_ERR_UNMANAGED = 7,   /* the account is not mid's */
	MID_ERR_PERMISSION = 8,  /* the peer may not make this request */
	MID_ERR_LOCKED = 9,      /* too many failures */
	MID_ERR_NO_SPACE = 10,   /* state could not be written */
	MID_ERR_INTERNAL = 11,   /* the agent failed; see its log */
	MID_ERR_VERSION = 12,    /* unsupported protocol version */
	MID_ERR_EXHAUSTED = 13,  /* the credential has no uses left */
	MID_ERR_UNAVAILABLE = 14, /* client side: the agent could not be reached in time */
	MID_PENDING = 15,         /* waiting for approval; the reply's id names the request */
	MID_ERR_LIMIT = 16,       /* a count limit was reached (sessions, requests) */
	_MID_STATUS_MAX,
};

enum mid_lease_state {
	MID_LEASE_LIVE = 0,
	MID_LEASE_REVOKED = 1,
	MID_LEASE_EXPIRED = 2,
};

#define MID_ISSUE_USES_SET 0x1u /* uses was given; otherwise the policy decides */

struct mid_request {
	uint8_t type;
	char account[MID_NAME_MAX + 1];
	char class_name[MID_NAME_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1];
	char credential[MID_CREDENTIAL_MAX + 1]; /* secret: wipe after use */
	char service[MID_SERVICE_MAX + 1];
	char rhost[MID_HOST_MAX + 1];
	char tty[MID_TTY_MAX + 1];
	char reason[MID_TEXT_MAX + 1];
	char services[MID_TEXT_MAX + 1]; /* narrowing at issue: comma-separated */
	char sources[MID_TEXT_MAX + 1];
	char session_id[MID_NAME_MAX + 1]; /* XDG_SESSION_ID, from pam_systemd */
	char id[MID_ID_MAX + 1];           /* approval request or session id */
	char as_user[MID_NAME_MAX + 1];    /* explain: evaluate for this requester */
	int64_t at;                        /* explain: evaluate at this time; 0 is now */
	int64_t since;                     /* audit: time range, 0 is open */
	int64_t until;
	uint32_t ttl; /* seconds; 0 takes the policy's default */
	uint32_t uses;
	uint32_t flags;
	uint32_t offset;
	uint32_t pid;
};

struct mid_lease_info {
	char lease[MID_LEASE_ID_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char class_name[MID_NAME_MAX + 1];
	uint32_t uid;
	uint32_t gid;
	int64_t created_at; /* seconds since the Epoch, UTC */
	int64_t expires_at;
	int64_t max_expires_at;
	uint32_t max_uses; /* 0: unlimited until expiry */
	uint32_t uses;
	uint32_t requester_uid;
	uint8_t state; /* enum mid_lease_state */
	char reason[MID_TEXT_MAX + 1];
	char services[MID_TEXT_MAX + 1]; /* narrowed at issue; empty: as the policy allows */
	char sources[MID_TEXT_MAX + 1];
};

enum mid_session_state {
	MID_SESSION_OPEN = 0,
	MID_SESSION_CLOSED = 1,
	MID_SESSION_TERMINATED = 2,
};

struct mid_session_info {
	char id[MID_ID_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1];
	char service[MID_SERVICE_MAX + 1];
	char rhost[MID_HOST_MAX + 1];
	char tty[MID_TTY_MAX + 1];
	char logind_id[MID_NAME_MAX + 1];
	uint32_t pid;
	int64_t started_at;
	int64_t deadline; /* the lease's expiry */
	uint8_t state;    /* enum mid_session_state */
};

struct mid_audit_info {
	int64_t seq;
	int64_t at;
	char event[MID_NAME_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char lease[MID_LEASE_ID_MAX + 1];
	int64_t peer_uid; /* -1: the agent itself */
	char detail[MID_TEXT_MAX + 1];
	char hash[65]; /* hex BLAKE2b-256 of this record, chained to the previous */
};

enum mid_approval_state {
	MID_APPROVAL_PENDING = 0,
	MID_APPROVAL_APPROVED = 1,
	MID_APPROVAL_DENIED = 2,
	MID_APPROVAL_EXPIRED = 3,
	MID_APPROVAL_COLLECTED = 4,
};

struct mid_approval_info {
	char id[MID_ID_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char class_name[MID_NAME_MAX + 1];
	uint32_t requester_uid;
	uint32_t approvals;
	uint32_t required;
	int64_t created_at;
	int64_t expires_at;
	uint8_t state; /* enum mid_approval_state */
	char reason[MID_TEXT_MAX + 1];
};

struct mid_agent_status {
	uint32_t pid;
	int64_t started_at;
	uint32_t live_leases;
	uint32_t total_leases;
	char version[MID_NAME_MAX + 1];
	char config_path[MID_PATH_MAX + 1];
	char state_dir[MID_PATH_MAX + 1];
	char runtime_dir[MID_PATH_MAX + 1];
};

struct mid_response {
	uint8_t type;
	uint8_t status; /* enum mid_status */
	char message[MID_TEXT_MAX + 1];
	struct mid_lease_info lease;             /* ISSUE, VERIFY, ACCOUNT, REVOKE, RENEW */
	char credential[MID_CREDENTIAL_MAX + 1]; /* ISSUE only; secret */
	uint32_t total; /* pages: entries in all pages */
	uint8_t count;  /* pages: entries in this one */
	struct mid_agent_status agent; /* STATUS */
	char id[MID_ID_MAX + 1];        /* PENDING: the approval request */
	char detail[MID_DETAIL_MAX + 1]; /* EXPLAIN, AUDIT_VERIFY, AUDIT_SIGN */
	/* The pages come last, so a sender can clear the fields before them
	 * (MID_RESPONSE_HEAD_SIZE) and leave the pages, of which only count
	 * entries are ever read. */
	struct mid_lease_info entries[MID_LIST_PAGE];       /* LIST: count entries */
	struct mid_session_info sessions[MID_SESSION_PAGE]; /* SESSIONS: count entries */
	struct mid_audit_info audit[MID_AUDIT_PAGE];        /* AUDIT: count entries */
	struct mid_approval_info approvals[MID_LIST_PAGE];  /* REQUESTS: count entries */
};

#define MID_RESPONSE_HEAD_SIZE offsetof(struct mid_response, entries)

/* Encoders return the frame length or -EMSGSIZE. */
MID_MUST_CHECK ssize_t mid_request_encode(const struct mid_request *req, void *buf, size_t size);
MID_MUST_CHECK ssize_t mid_response_encode(const struct mid_response *resp, void *buf, size_t size);
/* Decoders return 0, -EBADMSG (short or malformed), -EMSGSIZE (a field too
 * long), -EPROTO (wrong version) or -EOPNOTSUPP (unknown type). A request
 * is written to ret only on success; a response is decoded in place and
 * ret is cleared on failure. */
MID_MUST_CHECK int mid_request_decode(const void *buf, size_t size, struct mid_request *ret);
MID_MUST_CHECK int mid_response_decode(const void *buf, size_t size, struct mid_response *ret);

/* Wipes the secrets a request or response may carry. */
void mid_request_wipe(struct mid_request *req);
void mid_response_wipe(struct mid_response *resp);

const char *mid_status_to_string(enum mid_status status);
const char *mid_status_to_name(enum mid_status status);
const char *mid_lease_state_to_string(enum mid_lease_state state);
const char *mid_request_type_to_string(enum mid_request_type type);
const char *mid_session_state_to_string(enum mid_session_state state);
const char *mid_approval_state_to_string(uint8_t state);

/* pam_mid: lets an account the mid policy manages log in only with a live
 * credential that mid-agentd issued. Accounts the policy does not manage
 * get PAM_IGNORE without contacting the agent, so human logins go on
 * through the rest of the stack. */
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "client.h"
#include "names.h"
#include "protocol.h"

#define DEFAULT_TIMEOUT_MS 2000
#define LEASE_DATA "pam_mid_lease"
#define RUNTIME_MAX_DATA "systemd.runtime_max_sec" /* read by pam_systemd */
#define PROMPT "Credential: "
#define MID_CREDENTIAL_PREFIX "mid1_" /* as lib/token.h makes them */

/* PAM data left by a successful authentication. The lease id comes first,
 * so the data also reads as the lease id string. */
struct verified_lease {
	char lease[MID_LEASE_ID_MAX + 1];
	int64_t expires_at; /* seconds since the Epoch */
	char account[MID_NAME_MAX + 1];
	uint64_t verified_usec; /* CLOCK_MONOTONIC */
	bool account_done; /* the first account phase took the verdict */
};

/* The verification already made every check of the account phase (lock,
 * live lease, service, source, hours), so the account phase that follows
 * it within this long takes its verdict instead of sending a request. A
 * revocation after the verification still ends the login, because the
 * session phase checks the lease with the agent and a revoked lease ends
 * its sessions. */
#define VERDICT_REUSE_USEC 1000000ULL

struct options {
	const char *socket_path;
	const char *cache_path;
	int timeout_ms;
	bool debug;
	bool use_first_pass;
	bool try_first_pass;
};

static void options_parse(pam_handle_t *pamh, int argc, const char **argv, struct options *o)
{
	*o = (struct options){
		.socket_path = MID_DEFAULT_SOCKET,
		.cache_path = MID_DEFAULT_CACHE,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
	};

	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "debug") == 0)
			o->debug = true;
		else if (strcmp(arg, "use_first_pass") == 0)
			o->use_first_pass = true;
		else if (strcmp(arg, "try_first_pass") == 0)
			o->try_first_pass = true;
		else if (strncmp(arg, "socket=", 7) == 0 && arg[7] == '/')
			o->socket_path = arg + 7;
		else if (strncmp(arg, "cache=", 6) == 0 && arg[6] == '/')
			o->cache_path = arg + 6;
		else if (strncmp(arg, "timeout=", 8) == 0) {
			char *end;
			long v;

			errno = 0;
			v = strtol(arg + 8, &end, 10);
			if (errno || end == arg + 8 || *end || v < 1 || v > 60000)
				pam_syslog(pamh, LOG_ERR,
					   "invalid option %s: give milliseconds from 1 to 60000; using %d",
					   arg, DEFAULT_TIMEOUT_MS);
			else
				o->timeout_ms = (int)v;
		} else
			pam_syslog(pamh, LOG_ERR, "unknown option %s; ignored (see pam_mid(8))", arg);
	}
}

/* Returns 1 when the policy manages user, 0 when it does not, and -errno
 * when the cache cannot tell; then the agent decides. */
static int user_is_managed(const struct options *o, const char *user)
{
	struct mid_cache cache;
	int r;

	r = mid_cache_open(o->cache_path, &cache);
	if (r < 0)
		return r;
	r = mid_cache_is_managed(&cache, user);

	/* A class is listed as "PREFIX*": try each prefix of the name. */
	for (size_t len = strlen(user) - 1; r == 0 && len > 0; len--) {
		char pattern[MID_NAME_MAX + 2];

		memcpy(pattern, user, len);
		pattern[len] = '*';
		pattern[len + 1] = '\0';
		r = mid_cache_is_managed(&cache, pattern);
	}
	mid_cache_close(&cache);
	return r;
}

static int agent_check_managed(pam_handle_t *pamh, const struct options *o, const char *user);

/* Reads and checks PAM_USER. Returns PAM_SUCCESS, PAM_IGNORE for a user
 * mid does not manage, or another PAM code. An invalid name is never
 * logged: people type passwords into the user field. */
static int user_get(pam_handle_t *pamh, const struct options *o, const char **ret_user)
{
	const char *user = NULL;
	int r;

	r = pam_get_user(pamh, &user, NULL);
	if (r != PAM_SUCCESS)
		return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;
	if (!user || !name_is_valid(user)) {
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG, "user name is not a valid account name");
		return PAM_USER_UNKNOWN;
	}

	r = user_is_managed(o, user);
	if (r == 0) {
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG, "account is not managed by mid; ignoring");
		return PAM_IGNORE;
	}
	if (r < 0) {
		if (o->debug)
			pam_syslog(pamh, LOG_DEBUG, "NSS cache %s unusable (%s); asking the agent",
				   o->cache_path, strerror(-r));
		/* Without the cache the agent decides, before anything is
		 * prompted: a person's password must not reach the agent. */
		r = agent_check_managed(pamh, o, user);
		if (r != PAM_SUCCESS)
			return r;
	}
	*ret_user = user;
	return PAM_SUCCESS;
}

static void request_fill_items(pam_handle_t *pamh, struct mid_request *req)
{
	const void *item;

	if (pam_get_item(pamh, PAM_SERVICE, &item) == PAM_SUCCESS && item)
		snprintf(req->service, sizeof(req->service), "%s", (const char *)item);
	if (pam_get_item(pamh, PAM_RHOST, &item) == PAM_SUCCESS && item)
		snprintf(req->rhost, sizeof(req->rhost), "%s", (const char *)item);
	if (pam_get_item(pamh, PAM_TTY, &item) == PAM_SUCCESS && item)
		snprintf(req->tty, sizeof(req->tty), "%s", (const char *)item);
}

/* Sends req to the agent. Returns PAM_SUCCESS with the reply in resp, or
 * PAM_AUTHINFO_UNAVAIL when the agent cannot be reached in time. */
static int agent_call(pam_handle_t *pamh, const struct options *o, const struct mid_request *req,
		      struct mid_response *resp)
{
	int r = mid_client_call(o->socket_path, o->timeout_ms, req, resp);

	if (r < 0) {
		pam_syslog(pamh, LOG_ERR, "failed to reach mid-agentd at %s: %s", o->socket_path,
			   r == -ETIMEDOUT ? "timed out" : strerror(-r));
		return PAM_AUTHINFO_UNAVAIL;
	}
	return PAM_SUCCESS;
}

/* Returns PAM_SUCCESS when the agent manages user, PAM_IGNORE when it does
 * not, or PAM_AUTHINFO_UNAVAIL when it cannot be asked. */
static int agent_check_managed(pam_handle_t *pamh, const struct options *o, const char *user)
{
	struct mid_request req = {.type = MID_REQ_ACCOUNT};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	if (!resp)
		return PAM_BUF_ERR;
	snprintf(req.account, sizeof(req.account), "%s", user);
	r = agent_call(pamh, o, &req, resp);
	if (r == PAM_SUCCESS && (resp->status == MID_ERR_UNMANAGED || resp->status == MID_ERR_INVALID))
		r = PAM_IGNORE;
	free(resp);
	return r;
}

static uint64_t now_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void cleanup_lease(pam_handle_t *pamh, void *data, int error_status)
{
	free(data);
}

/* Gets the credential: from PAM_AUTHTOK with use_first_pass or
 * try_first_pass, else by prompting. The caller wipes and frees it. */
static int credential_get(pam_handle_t *pamh, const struct options *o, bool prompt_only,
			  char **ret)
{
	const void *item = NULL;
	char *answer = NULL;
	int r;

	if (!prompt_only && (o->use_first_pass || o->try_first_pass)) {
		if (pam_get_item(pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS && item) {
			*ret = strdup(item);
			return *ret ? PAM_SUCCESS : PAM_BUF_ERR;
		}
		if (o->use_first_pass)
			return PAM_AUTH_ERR;
	}

	r = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, PROMPT);
	if (r != PAM_SUCCESS) {
		if (answer) {
			explicit_bzero(answer, strlen(answer));
			free(answer);
		}
		return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;
	}
	if (!answer)
		return PAM_AUTH_ERR;
	/* Later modules with use_first_pass see the same credential. */
	(void)pam_set_item(pamh, PAM_AUTHTOK, answer);
	*ret = answer;
	return PAM_SUCCESS;
}

/* Shows a policy refusal to the user, unless the application asked for
 * silence. */
static void tell_user(pam_handle_t *pamh, int flags, const char *message)
{
	if (!(flags & PAM_SILENT) && message && *message)
		(void)pam_error(pamh, "mid: %s", message);
}

static int status_to_auth(pam_handle_t *pamh, int flags, const char *user,
			  const struct mid_response *resp)
{
	switch (resp->status) {
	case MID_OK:
		return PAM_SUCCESS;
	case MID_ERR_UNMANAGED:
		return PAM_IGNORE;
	case MID_ERR_INVALID:
		return PAM_USER_UNKNOWN;
	case MID_ERR_LOCKED:
		pam_syslog(pamh, LOG_NOTICE, "account %s is locked after repeated failures", user);
		tell_user(pamh, flags, resp->message);
		return PAM_MAXTRIES;
	case MID_ERR_DENIED:
		/* A valid credential refused by a condition of the policy: the
		 * message names the rule, and the user may see it. */
		pam_syslog(pamh, LOG_NOTICE, "login of %s denied by policy: %s", user, resp->message);
		tell_user(pamh, flags, resp->message);
		return PAM_AUTH_ERR;
	case MID_ERR_PERMISSION:
		pam_syslog(pamh, LOG_ERR, "mid-agentd refused verification: %s", resp->message);
		return PAM_AUTH_ERR;
	case MID_ERR_INTERNAL:
	case MID_ERR_NO_SPACE:
	case MID_ERR_VERSION:
	case MID_ERR_UNAVAILABLE:
	case MID_ERR_LIMIT:
		pam_syslog(pamh, LOG_ERR, "mid-agentd failed to verify a credential for %s: %s", user,
			   resp->message);
		return PAM_AUTHINFO_UNAVAIL;
	default:
		pam_syslog(pamh, LOG_NOTICE, "authentication failure for %s: %s", user,
			   mid_status_to_string(resp->status));
		return PAM_AUTH_ERR;
	}
}

static void credential_free(char *credential)
{
	if (credential) {
		explicit_bzero(credential, strlen(credential));
		free(credential);
	}
}

/* Verifies one credential with the agent. Returns a PAM code; on success
 * the verified lease is stored as PAM data for the later phases. */
static int credential_verify(pam_handle_t *pamh, int flags, const struct options *o,
			     const char *user, const char *credential, bool *ret_bad_credential)
{
	struct mid_request req = {.type = MID_REQ_VERIFY};
	struct mid_response *resp = NULL;
	struct verified_lease *data;
	size_t len = strlen(credential);
	int r;

	*ret_bad_credential = false;
	if (len == 0 || len > MID_CREDENTIAL_MAX) {
		pam_syslog(pamh, LOG_NOTICE, "authentication failure for %s: %s credential", user,
			   len == 0 ? "empty" : "over-long");
		*ret_bad_credential = true;
		return PAM_AUTH_ERR;
	}
	/* Text without the credential prefix is no credential (often the
	 * user's password from an earlier module): it never leaves this
	 * process, and so never counts towards a lockout. */
	if (strncmp(credential, MID_CREDENTIAL_PREFIX, strlen(MID_CREDENTIAL_PREFIX)) != 0) {
		pam_syslog(pamh, LOG_NOTICE, "authentication failure for %s: not a mid credential",
			   user);
		*ret_bad_credential = true;
		return PAM_AUTH_ERR;
	}

	snprintf(req.account, sizeof(req.account), "%s", user);
	memcpy(req.credential, credential, len + 1);
	request_fill_items(pamh, &req);

	resp = calloc(1, sizeof(*resp));
	if (!resp) {
		r = PAM_BUF_ERR;
		goto out;
	}
	r = agent_call(pamh, o, &req, resp);
	if (r != PAM_SUCCESS)
		goto out;
	*ret_bad_credential = resp->status == MID_ERR_BAD_CREDENTIAL;
	r = status_to_auth(pamh, flags, user, resp);
	if (r != PAM_SUCCESS)
		goto out;

	data = calloc(1, sizeof(*data));
	if (!data) {
		r = PAM_BUF_ERR;
		goto out;
	}
	snprintf(data->lease, sizeof(data->lease), "%s", resp->lease.lease);
	data->expires_at = resp->lease.expires_at;
	snprintf(data->account, sizeof(data->account), "%s", user);
	data->verified_usec = now_monotonic_usec();
	if (pam_set_data(pamh, LEASE_DATA, data, cleanup_lease) != PAM_SUCCESS) {
		free(data);
		r = PAM_BUF_ERR;
		goto out;
	}
	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG, "credential for %s verified, lease %s", user,
			   resp->lease.lease);
out:
	mid_request_wipe(&req);
	free(resp);
	return r;
}

PAM_EXTERN MID_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc,
					       const char **argv)
{
	const char *user = NULL;
	char *credential = NULL;
	struct options o;
	bool bad_credential = false;
	int r;

	options_parse(pamh, argc, argv, &o);
	r = user_get(pamh, &o, &user);
	if (r != PAM_SUCCESS)
		return r;

	r = credential_get(pamh, &o, false, &credential);
	if (r != PAM_SUCCESS)
		return r;
	r = credential_verify(pamh, flags, &o, user, credential, &bad_credential);

	/* With try_first_pass, a token from an earlier module that is not a
	 * valid credential (typically the user's password) leads to a prompt. */
	if (r == PAM_AUTH_ERR && bad_credential && o.try_first_pass && !o.use_first_pass) {
		const void *item = NULL;

		if (pam_get_item(pamh, PAM_AUTHTOK, &item) == PAM_SUCCESS && item &&
		    strcmp(item, credential) == 0) {
			credential_free(credential);
			credential = NULL;
			r = credential_get(pamh, &o, true, &credential);
			if (r == PAM_SUCCESS)
				r = credential_verify(pamh, flags, &o, user, credential,
						      &bad_credential);
		}
	}
	credential_free(credential);
	return r;
}

PAM_EXTERN MID_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc,
					  const char **argv)
{
	const void *lease = NULL;

	if (pam_get_data(pamh, LEASE_DATA, &lease) == PAM_SUCCESS && lease)
		return PAM_SUCCESS;
	return PAM_IGNORE;
}

/* Asks the agent about the lease that keeps user live: the one auth
 * verified, or else any live lease of the account. */
static int lease_request(pam_handle_t *pamh, const struct options *o, uint8_t type,
			 const char *user, struct mid_response *resp)
{
	struct mid_request req = {.type = type};
	const void *lease = NULL;
	const char *session_id;

	snprintf(req.account, sizeof(req.account), "%s", user);
	if (pam_get_data(pamh, LEASE_DATA, &lease) == PAM_SUCCESS && lease)
		snprintf(req.lease, sizeof(req.lease), "%s", (const char *)lease);
	request_fill_items(pamh, &req);
	req.pid = (uint32_t)getpid();
	session_id = pam_getenv(pamh, "XDG_SESSION_ID");
	if (session_id)
		snprintf(req.session_id, sizeof(req.session_id), "%s", session_id);
	return agent_call(pamh, o, &req, resp);
}

/* True once, for the first account phase of the user that this handle's
 * authentication verified, within VERDICT_REUSE_USEC of it. */
static bool verdict_reusable(pam_handle_t *pamh, const struct options *o)
{
	const void *item = NULL, *user = NULL;
	struct verified_lease *v;

	if (pam_get_data(pamh, LEASE_DATA, &item) != PAM_SUCCESS || !item)
		return false;
	v = (struct verified_lease *)item;
	if (v->account_done || pam_get_item(pamh, PAM_USER, &user) != PAM_SUCCESS || !user ||
	    strcmp(user, v->account) != 0 ||
	    now_monotonic_usec() - v->verified_usec > VERDICT_REUSE_USEC)
		return false;
	v->account_done = true;
	if (o->debug)
		pam_syslog(pamh, LOG_DEBUG, "account %s: lease %s was verified just now", v->account,
			   v->lease);
	return true;
}

PAM_EXTERN MID_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc,
					    const char **argv)
{
	struct mid_response *resp;
	const char *user = NULL;
	struct options o;
	int r;

	options_parse(pamh, argc, argv, &o);
	if (verdict_reusable(pamh, &o))
		return PAM_SUCCESS;
	r = user_get(pamh, &o, &user);
	if (r != PAM_SUCCESS)
		return r;

	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return PAM_BUF_ERR;
	r = lease_request(pamh, &o, MID_REQ_ACCOUNT, user, resp);
	if (r != PAM_SUCCESS)
		goto out;

	switch (resp->status) {
	case MID_OK:
		r = PAM_SUCCESS;
		break;
	case MID_ERR_UNMANAGED:
		r = PAM_IGNORE;
		break;
	case MID_ERR_INVALID:
		r = PAM_USER_UNKNOWN;
		break;
	case MID_ERR_PERMISSION:
		pam_syslog(pamh, LOG_ERR, "mid-agentd refused the account check: %s", resp->message);
		r = PAM_PERM_DENIED;
		break;
	case MID_ERR_INTERNAL:
	case MID_ERR_NO_SPACE:
	case MID_ERR_VERSION:
		pam_syslog(pamh, LOG_ERR, "mid-agentd failed to check account %s: %s", user,
			   resp->message);
		r = PAM_AUTHINFO_UNAVAIL;
		break;
	case MID_ERR_DENIED:
		pam_syslog(pamh, LOG_NOTICE, "login of %s denied by policy: %s", user, resp->message);
		tell_user(pamh, flags, resp->message);
		r = PAM_PERM_DENIED;
		break;
	case MID_ERR_LOCKED:
		pam_syslog(pamh, LOG_NOTICE, "account %s is locked after repeated failures", user);
		tell_user(pamh, flags, resp->message);
		r = PAM_PERM_DENIED;
		break;
	default:
		pam_syslog(pamh, LOG_NOTICE, "account %s has no live lease: %s", user, resp->message);
		r = PAM_ACCT_EXPIRED;
		break;
	}
out:
	free(resp);
	return r;
}

static void cleanup_string(pam_handle_t *pamh, void *data, int error_status)
{
	free(data);
}

/* Sets the PAM data that pam_systemd turns into RuntimeMaxSec= of the
 * session's scope, so systemd ends the session even without the agent.
 * It is the time left until the lease's max_ttl, not until its current
 * expiry: a renewal cannot move the scope's limit, and the agent ends the
 * session at the (possibly renewed) expiry itself.
 * NOTE: the SESSION_OPEN reply does not carry the rule's on_expiry, so the
 * limit is set for on_expiry = warn or keep too, and systemd then ends such
 * a session at max_ttl. */
static int runtime_max_set(pam_handle_t *pamh, const struct mid_lease_info *lease)
{
	int64_t left = lease->max_expires_at - (int64_t)time(NULL);
	char *value = NULL;
	int r;

	if (asprintf(&value, "%lld", (long long)(left > 1 ? left : 1)) < 0)
		return PAM_BUF_ERR;
	r = pam_set_data(pamh, RUNTIME_MAX_DATA, value, cleanup_string);
	if (r != PAM_SUCCESS)
		free(value);
	return r;
}

static int session_change(pam_handle_t *pamh, int flags, int argc, const char **argv,
			  uint8_t type)
{
	bool open = type == MID_REQ_SESSION_OPEN;
	struct mid_response *resp;
	const char *user = NULL;
	struct options o;
	int r;

	options_parse(pamh, argc, argv, &o);
	r = user_get(pamh, &o, &user);
	/* A name mid cannot use (a person's "jane@example.com") is not mid's
	 * session, so a "required" session line leaves it to the others. */
	if (r == PAM_IGNORE || r == PAM_USER_UNKNOWN)
		return PAM_IGNORE;
	if (r != PAM_SUCCESS)
		return PAM_SESSION_ERR;

	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return PAM_BUF_ERR;
	r = lease_request(pamh, &o, type, user, resp);
	if (r != PAM_SUCCESS)
		r = PAM_SESSION_ERR;
	else if (resp->status == MID_ERR_UNMANAGED)
		r = PAM_IGNORE;
	else if (resp->status != MID_OK) {
		pam_syslog(pamh, LOG_NOTICE, "%s of a session for %s refused: %s",
			   open ? "opening" : "closing", user, resp->message);
		if (open)
			tell_user(pamh, flags, resp->message);
		r = PAM_SESSION_ERR;
	} else {
		if (o.debug)
			pam_syslog(pamh, LOG_DEBUG, "session %s of %s %s, lease %s", resp->id, user,
				   open ? "opened" : "closed", resp->lease.lease);
		r = open ? runtime_max_set(pamh, &resp->lease) : PAM_SUCCESS;
	}
	free(resp);

	/* A session that already ran is closed whatever the agent replies. */
	if (!open && r == PAM_SESSION_ERR)
		r = PAM_SUCCESS;
	return r;
}

/* In the session stack pam_mid must come before pam_systemd, which reads
 * systemd.runtime_max_sec when it opens the session. XDG_SESSION_ID is
 * not set yet then, and the agent finds the logind session from this
 * process when it ends the session. A refusal (max_sessions reached, the
 * lease ended) returns PAM_SESSION_ERR and shows the agent's message. */
PAM_EXTERN MID_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
					       const char **argv)
{
	return session_change(pamh, flags, argc, argv, MID_REQ_SESSION_OPEN);
}

PAM_EXTERN MID_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
						const char **argv)
{
	return session_change(pamh, flags, argc, argv, MID_REQ_SESSION_CLOSE);
}

PAM_EXTERN MID_EXPORT int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc,
					    const char **argv)
{
	/* Credentials are issued by the agent, never changed by the user. */
	return PAM_IGNORE;
}

/* midctl approve, deny, collect and requests, and the part of issue that
 * reports or waits for a request that needs approval. */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "midctl.h"
#include "names.h"

/* issue --wait sends COLLECT 250 ms after the request, then backs off by
 * half each time, up to one COLLECT every 5 s. */
#define POLL_FIRST_MS 250
#define POLL_MAX_MS 5000

static bool request_field_is_valid(const char *name)
{
	return strcmp(name, "request") == 0 || strcmp(name, "state") == 0;
}

/* Prints the outcome of issue, approve, deny or collect for one request:
 * its id, its state and the agent's message. Returns 0, or EXIT_USAGE for
 * an unknown --field. */
static int print_request_result(const struct options *o, const char *id, const char *state,
				const char *message)
{
	if (o->field) {
		if (strcmp(o->field, "request") == 0)
			printf("%s\n", id);
		else if (strcmp(o->field, "state") == 0)
			printf("%s\n", state);
		else
			return usage_error("unknown field \"%s\" for a request: use request or "
					   "state",
					   o->field);
		return 0;
	}
	if (o->json) {
		fputs("{\"request\":", stdout);
		json_string(stdout, id);
		fputs(",\"state\":", stdout);
		json_string(stdout, state);
		fputs(",\"message\":", stdout);
		json_string(stdout, message);
		fputs("}\n", stdout);
		return 0;
	}
	printf("request:    %s\n", id);
	printf("state:      %s\n", state);
	printf("message:    %s\n", message);
	return 0;
}

/* Prints a request that still waits for approval and returns
 * EXIT_PENDING. A --field that only a credential has (such as
 * credential) prints nothing on stdout, so a script cannot mistake the
 * output for a credential. */
static int report_pending(const struct options *o, const char *id, const char *message)
{
	if (o->field && !request_field_is_valid(o->field)) {
		fprintf(stderr, "midctl: no credential yet: %s\n", message);
		return EXIT_PENDING;
	}
	(void)print_request_result(o, id, "pending", message);
	return EXIT_PENDING;
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Polls COLLECT for request id until it is approved, refused, or the
 * deadline passes. On entry resp contains the pending reply. */
static int request_wait(const struct options *o, const char *id, uint32_t wait_timeout,
			struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_COLLECT};
	int64_t deadline = wait_timeout ? monotonic_ms() + (int64_t)wait_timeout * 1000 : 0;
	int64_t interval = POLL_FIRST_MS;
	int r;

	snprintf(req.id, sizeof(req.id), "%s", id);
	fprintf(stderr, "midctl: %s\nmidctl: waiting for request %s to be approved\n",
		resp->message, id);
	for (;;) {
		int64_t now = monotonic_ms();

		if (deadline && now >= deadline) {
			fprintf(stderr,
				"midctl: timed out waiting for approval of request %s; run "
				"midctl collect %s later\n",
				id, id);
			return report_pending(o, id, resp->message);
		}
		if (deadline && now + interval > deadline)
			interval = deadline - now;
		sleep_ms(interval);
		interval = interval * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : interval * 3 / 2;

		r = call_accepting(o, &req, resp, true);
		if (r != 0)
			return r;
		if (resp->status == MID_OK)
			return print_lease(o, &resp->lease, resp->credential);
	}
}

/* --field request asked for a request id, but the rule needed no approval
 * and a credential came back that would never be printed: the lease is
 * revoked again, so no live credential is left that nobody holds. */
static int revoke_unwanted(const struct options *o, const struct mid_lease_info *lease)
{
	struct mid_request req = {.type = MID_REQ_REVOKE};
	struct mid_response *resp = response_new();
	int r;

	snprintf(req.lease, sizeof(req.lease), "%s", lease->lease);
	snprintf(req.reason, sizeof(req.reason), "issued without approval to --field request");
	r = call(o, &req, resp);
	free(resp);
	fprintf(stderr,
		"midctl: %s needs no approval, so there is no request id; lease %s was %s. "
		"Ask with --field credential instead\n",
		lease->account, lease->lease, r == 0 ? "revoked again" : "issued and could not be revoked");
	return EXIT_REFUSED;
}

int issue_send(const struct options *o, const struct mid_request *req, bool wait,
	       uint32_t wait_timeout)
{
	struct mid_response *resp = response_new();
	char id[MID_ID_MAX + 1];
	int r;

	r = call_accepting(o, req, resp, true);
	if (r == 0 && resp->status == MID_OK && o->field && strcmp(o->field, "request") == 0)
		r = revoke_unwanted(o, &resp->lease);
	else if (r == 0 && resp->status == MID_OK)
		r = print_lease(o, &resp->lease, resp->credential);
	else if (r == 0) {
		snprintf(id, sizeof(id), "%s", resp->id);
		if (wait)
			r = request_wait(o, id, wait_timeout, resp);
		else
			r = report_pending(o, id, resp->message);
	}
	mid_response_wipe(resp);
	free(resp);
	return r;
}

/* Parses "COMMAND ID [--reason TEXT]" into req. */
static int parse_id_command(int argc, char **argv, struct mid_request *req)
{
	static const struct option opts[] = {
		{"reason", required_argument, NULL, 'R'},
		{},
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (c == 'R' && req->type != MID_REQ_COLLECT) {
			if (copy_arg(req->reason, sizeof(req->reason), optarg, "reason") < 0)
				return EXIT_USAGE;
		} else
			return usage_error("invalid option for %s", argv[0]);
	}
	if (optind != argc - 1)
		return usage_error("%s takes exactly one request ID", argv[0]);
	if (!lease_id_is_valid(argv[optind]))
		return usage_error("invalid request id \"%s\": expected %d lowercase hex "
				   "digits, as midctl issue and midctl requests print",
				   argv[optind], MID_LEASE_ID_LEN);
	snprintf(req->id, sizeof(req->id), "%s", argv[optind]);
	return 0;
}

/* approve and deny: both print the request's state after the decision. */
static int decide(const struct options *o, uint8_t type, int argc, char **argv)
{
	struct mid_request req = {.type = type};
	struct mid_response *resp;
	const char *state;
	int r;

	r = parse_id_command(argc, argv, &req);
	if (r != 0)
		return r;
	if (type == MID_REQ_DENY && !req.reason[0])
		return usage_error("deny needs --reason TEXT, which the requester sees");
	if (o->field && !request_field_is_valid(o->field))
		return usage_error("unknown field \"%s\" for %s: use request or state", o->field,
				   argv[0]);

	resp = response_new();
	r = call_accepting(o, &req, resp, true);
	if (r == 0) {
		if (type == MID_REQ_DENY)
			state = "denied";
		else
			state = resp->status == MID_OK ? "approved" : "pending";
		r = print_request_result(o, req.id, state, resp->message);
	}
	free(resp);
	return r;
}

int cmd_approve(const struct options *o, int argc, char **argv)
{
	return decide(o, MID_REQ_APPROVE, argc, argv);
}

int cmd_deny(const struct options *o, int argc, char **argv)
{
	return decide(o, MID_REQ_DENY, argc, argv);
}

int cmd_collect(const struct options *o, int argc, char **argv)
{
	struct mid_request req = {.type = MID_REQ_COLLECT};
	struct mid_response *resp;
	int r;

	r = parse_id_command(argc, argv, &req);
	if (r != 0)
		return r;

	resp = response_new();
	r = call_accepting(o, &req, resp, true);
	if (r == 0 && resp->status == MID_OK)
		r = print_lease(o, &resp->lease, resp->credential);
	else if (r == 0)
		r = report_pending(o, req.id, resp->message);
	mid_response_wipe(resp);
	free(resp);
	return r;
}

static void requester_name(uint32_t uid, char *buf, size_t size)
{
	struct passwd pw, *found = NULL;
	char pwbuf[4096];

	if (getpwuid_r((uid_t)uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found)
		snprintf(buf, size, "%s", found->pw_name);
	else
		snprintf(buf, size, "%u", uid);
}

static void approval_json(FILE *f, const struct mid_approval_info *info)
{
	char created[32], expires[32], requester[64];

	format_time(info->created_at, created, sizeof(created));
	format_time(info->expires_at, expires, sizeof(expires));
	requester_name(info->requester_uid, requester, sizeof(requester));
	fputs("{\"request\":", f);
	json_string(f, info->id);
	fputs(",\"account\":", f);
	json_string(f, info->account);
	fputs(",\"class\":", f);
	json_string(f, info->class_name);
	fprintf(f, ",\"requester_uid\":%u,\"requester\":", info->requester_uid);
	json_string(f, requester);
	fprintf(f, ",\"state\":\"%s\",\"approvals\":%u,\"required\":%u",
		mid_approval_state_to_string(info->state), info->approvals, info->required);
	fprintf(f, ",\"created_at\":\"%s\",\"expires_at\":\"%s\",\"reason\":", created, expires);
	json_string(f, info->reason);
	fputc('}', f);
}

static void approval_line(const struct mid_approval_info *info)
{
	char target[MID_NAME_MAX + 8], requester[64], approvals[24], expires[32];

	if (info->account[0])
		snprintf(target, sizeof(target), "%s", info->account);
	else
		snprintf(target, sizeof(target), "class %s", info->class_name);
	requester_name(info->requester_uid, requester, sizeof(requester));
	snprintf(approvals, sizeof(approvals), "%u/%u", info->approvals, info->required);
	format_time(info->expires_at, expires, sizeof(expires));
	printf("%-16s  %-20s  %-12s  %-9s  %9s  %-20s  %s\n", info->id, target, requester,
	       mid_approval_state_to_string(info->state), approvals, expires, info->reason);
}

int cmd_requests(const struct options *o, int argc, char **argv)
{
	struct mid_request req = {.type = MID_REQ_REQUESTS};
	struct mid_response *resp;
	bool first = true;
	int r = 0;

	if (argc > 1)
		return usage_error("requests takes no arguments");
	if (o->field)
		return usage_error("--field does not work with requests; use --json");

	resp = response_new();
	if (o->json)
		fputs("{\"requests\":[", stdout);
	else
		printf("%-16s  %-20s  %-12s  %-9s  %9s  %-20s  %s\n", "REQUEST", "ACCOUNT",
		       "REQUESTER", "STATE", "APPROVALS", "EXPIRES", "REASON");
	for (;;) {
		r = call(o, &req, resp);
		if (r != 0)
			break;
		for (unsigned i = 0; i < resp->count; i++) {
			if (o->json) {
				if (!first)
					fputc(',', stdout);
				approval_json(stdout, &resp->approvals[i]);
			} else
				approval_line(&resp->approvals[i]);
			first = false;
		}
		req.offset += resp->count;
		if (resp->count == 0 || req.offset >= resp->total)
			break;
	}
	if (o->json && r == 0)
		printf("],\"total\":%u}\n", resp->total);
	free(resp);
	return r;
}

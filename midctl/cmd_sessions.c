/* midctl sessions and midctl kill: the open sessions the agent tracks,
 * and ending one of them. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "midctl.h"

#define SESSION_ID_LEN 16

static bool session_id_is_valid(const char *id)
{
	if (strlen(id) != SESSION_ID_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* The source of a session: the remote host, else the terminal. */
static const char *session_source(const struct mid_session_info *s)
{
	if (s->rhost[0])
		return s->rhost;
	return s->tty[0] ? s->tty : "local";
}

static void session_json(FILE *f, const struct mid_session_info *s)
{
	char started[32], deadline[32];

	format_time(s->started_at, started, sizeof(started));
	format_time(s->deadline, deadline, sizeof(deadline));
	fputs("{\"session\":", f);
	json_string(f, s->id);
	fputs(",\"account\":", f);
	json_string(f, s->account);
	fputs(",\"lease\":", f);
	json_string(f, s->lease);
	fputs(",\"service\":", f);
	json_string(f, s->service);
	fputs(",\"rhost\":", f);
	json_string(f, s->rhost);
	fputs(",\"tty\":", f);
	json_string(f, s->tty);
	fputs(",\"logind_session\":", f);
	json_string(f, s->logind_id);
	fprintf(f, ",\"pid\":%u,\"started_at\":\"%s\",\"deadline\":\"%s\",\"state\":\"%s\"}",
		s->pid, started, deadline, mid_session_state_to_string(s->state));
}

int cmd_sessions(const struct options *o, int argc, char **argv)
{
	struct mid_request req = {.type = MID_REQ_SESSIONS};
	struct mid_response *resp;
	bool first = true;
	int r = 0;

	if (argc > 1)
		return usage_error("sessions takes no arguments");
	if (o->field)
		return usage_error("--field works with issue, renew and revoke; use --json with sessions");
	resp = response_new();

	if (o->json)
		fputs("{\"sessions\":[", stdout);
	else
		printf("%-16s  %-20s  %-16s  %-20s  %-20s  %s\n", "SESSION", "ACCOUNT", "LEASE",
		       "SOURCE", "STARTED", "DEADLINE");
	for (;;) {
		r = call(o, &req, resp);
		if (r != 0)
			break;
		for (unsigned i = 0; i < resp->count; i++) {
			const struct mid_session_info *s = &resp->sessions[i];
			char started[32], deadline[32];

			if (o->json) {
				if (!first)
					fputc(',', stdout);
				session_json(stdout, s);
			} else {
				format_time(s->started_at, started, sizeof(started));
				format_time(s->deadline, deadline, sizeof(deadline));
				printf("%-16s  %-20s  %-16s  %-20s  %-20s  %s\n", s->id, s->account,
				       s->lease, session_source(s), started, deadline);
			}
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

int cmd_kill(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"reason", required_argument, NULL, 'R'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_KILL};
	struct mid_response *resp;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (c != 'R')
			return usage_error("invalid option for kill");
		if (copy_arg(req.reason, sizeof(req.reason), optarg, "reason") < 0)
			return EXIT_USAGE;
	}
	if (optind != argc - 1)
		return usage_error("kill takes exactly one SESSION");
	if (!session_id_is_valid(argv[optind]))
		return usage_error("invalid session id \"%s\": expected %d hex digits, as midctl sessions shows",
				   argv[optind], SESSION_ID_LEN);
	if (o->field)
		return usage_error("--field works with issue, renew and revoke");
	strcpy(req.id, argv[optind]);

	resp = response_new();
	r = call(o, &req, resp);
	if (r == 0) {
		if (o->json) {
			fputs("{\"session\":", stdout);
			json_string(stdout, req.id);
			fputs(",\"state\":\"terminated\"}\n", stdout);
		} else
			printf("%s\n", resp->message);
	}
	free(resp);
	return r;
}

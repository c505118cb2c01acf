/* midctl: the command line for sysadmins and automation to issue, renew,
 * revoke and list credentials held by mid-agentd. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "names.h"
#include "midctl.h"
#include "protocol.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: midctl [OPTIONS] COMMAND [ARGS]\n"
		"Ask mid-agentd for just-in-time credentials for machine accounts.\n\n"
		"Credentials:\n"
		"  issue ACCOUNT [ISSUE-OPTIONS]       credential for an existing account\n"
		"  issue --class CLASS [ISSUE-OPTIONS] credential for a new ephemeral account\n"
		"    --ttl D           lifetime (default: the rule's ttl)\n"
		"    --uses N          logins allowed, 0: no limit (default: the rule's max_uses)\n"
		"    --reason TEXT     why, up to 255 bytes; logged and audited\n"
		"    --service LIST    PAM services the credential works for, comma-separated\n"
		"    --source LIST     addresses, CIDR networks or local, comma-separated\n"
		"    --wait            when the rule needs approval, wait for it and print\n"
		"                      the credential\n"
		"    --timeout D       stop waiting after D (default: when the request expires)\n"
		"  renew LEASE [--ttl D]               set the expiry to now + D, up to max_ttl\n"
		"  revoke LEASE [--reason TEXT]        end a lease now\n"
		"  list                                list leases (root: all, others: their own)\n"
		"  status                              show the agent's version, leases and paths\n\n"
		"Approvals:\n"
		"  requests                            list the approval requests you may see\n"
		"  approve ID [--reason TEXT]          approve another user's request\n"
		"  deny ID --reason TEXT               deny a request, or withdraw your own\n"
		"  collect ID                          print an approved request's credential\n\n"
		"Policy (unlock and reload: root only):\n"
		"  explain ACCOUNT|--class CLASS [--service NAME] [--source ADDR|local]\n"
		"          [--at TIME] [--as USER]     show the policy's decision; issues nothing\n"
		"  unlock [ACCOUNT] [--source ADDR]    clear the lockout of an account or source\n"
		"  reload                              re-read the policy file\n\n"
		"Sessions:\n"
		"  sessions                            list open sessions\n"
		"  kill SESSION [--reason TEXT]        end a session\n\n"
		"Audit log (root only):\n"
		"  audit [--since TIME] [--until TIME] [--account NAME]\n"
		"                                      print audit records, oldest first\n"
		"  audit verify                        check the hash chain in the agent's state\n"
		"  audit verify --file FILE [--key HEX]\n"
		"                                      check a signed export, without the agent\n"
		"  audit export --to FILE              write a signed export to a new FILE\n"
		"  report [--since TIME]               summarise the audit log\n\n"
		"Options (before COMMAND):\n"
		"  -s, --socket PATH   agent socket (default: $MID_SOCKET or %s)\n"
		"  -j, --json          print JSON: one object, or one line per record for audit\n"
		"  -F, --field NAME    print one field raw, for scripts: lease, account, class,\n"
		"                      uid, gid, credential, created_at, expires_at, ttl, state,\n"
		"                      uses, max_uses, reason, or request (a pending request)\n"
		"  -t, --timeout MS    wait at most MS milliseconds for each reply, 1 to 600000\n"
		"                      (default 5000)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n\n"
		"A duration D is 30s, 15m, 8h, 2d, 1w or a sum such as 1h30m.\n"
		"A TIME is 2026-12-04T20:15:00Z (UTC), a date such as 2026-12-04 (midnight UTC),\n"
		"or a duration meaning that long ago (24h). explain --at also takes now, and +D\n"
		"for D from now.\n\n"
		"Exit status: 0 success; 1 refused by the agent, explain found a denial, or a\n"
		"verification found damage; 2 usage error; 3 agent unreachable; 4 waiting for\n"
		"approval (issue or collect printed a request ID, not a credential).\n",
		MID_DEFAULT_SOCKET);
}

static int cmd_issue(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"class", required_argument, NULL, 'C'}, {"ttl", required_argument, NULL, 'T'},
		{"uses", required_argument, NULL, 'U'},  {"reason", required_argument, NULL, 'R'},
		{"service", required_argument, NULL, 'S'}, {"source", required_argument, NULL, 'O'},
		{"wait", no_argument, NULL, 'W'},          {"timeout", required_argument, NULL, 'D'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_ISSUE};
	uint32_t wait_timeout = 0;
	bool wait = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'C':
			if (copy_arg(req.class_name, sizeof(req.class_name), optarg, "class name") < 0)
				return EXIT_USAGE;
			break;
		case 'T':
			if (parse_ttl(optarg, &req.ttl) < 0)
				return EXIT_USAGE;
			break;
		case 'U':
			if (parse_uses(optarg, &req.uses) < 0)
				return EXIT_USAGE;
			req.flags |= MID_ISSUE_USES_SET;
			break;
		case 'R':
			if (copy_arg(req.reason, sizeof(req.reason), optarg, "reason") < 0)
				return EXIT_USAGE;
			break;
		case 'S':
			if (copy_arg(req.services, sizeof(req.services), optarg, "service list") < 0)
				return EXIT_USAGE;
			break;
		case 'O':
			if (copy_arg(req.sources, sizeof(req.sources), optarg, "source list") < 0)
				return EXIT_USAGE;
			break;
		case 'W':
			wait = true;
			break;
		case 'D':
			if (parse_ttl(optarg, &wait_timeout) < 0)
				return EXIT_USAGE;
			break;
		default:
			return usage_error("invalid option for issue");
		}
	}
	if (optind < argc) {
		if (req.class_name[0])
			return usage_error("give either ACCOUNT or --class CLASS, not both");
		if (!name_is_valid(argv[optind]))
			return usage_error("invalid account name \"%s\"", argv[optind]);
		strcpy(req.account, argv[optind++]);
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!req.account[0] && !req.class_name[0])
		return usage_error("issue needs an ACCOUNT or --class CLASS");
	if (wait_timeout && !wait)
		return usage_error("--timeout of issue works only with --wait");

	return issue_send(o, &req, wait, wait_timeout);
}

static int lease_command(const struct options *o, uint8_t type, int argc, char **argv)
{
	static const struct option opts[] = {
		{"ttl", required_argument, NULL, 'T'},
		{"reason", required_argument, NULL, 'R'},
		{},
	};
	struct mid_request req = {.type = type};
	struct mid_response *resp;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (c == 'T' && type == MID_REQ_RENEW) {
			if (parse_ttl(optarg, &req.ttl) < 0)
				return EXIT_USAGE;
		} else if (c == 'R' && type == MID_REQ_REVOKE) {
			if (copy_arg(req.reason, sizeof(req.reason), optarg, "reason") < 0)
				return EXIT_USAGE;
		} else
			return usage_error("invalid option for %s", argv[0]);
	}
	if (optind != argc - 1)
		return usage_error("%s takes exactly one LEASE", argv[0]);
	if (!lease_id_is_valid(argv[optind]))
		return usage_error("invalid lease id \"%s\": expected %d hex digits, as midctl list shows",
				   argv[optind], MID_LEASE_ID_LEN);
	strcpy(req.lease, argv[optind]);

	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return EXIT_REFUSED;
	r = call(o, &req, resp);
	if (r == 0)
		r = print_lease(o, &resp->lease, NULL);
	free(resp);
	return r;
}

static int cmd_list(const struct options *o, int argc, char **argv)
{
	struct mid_request req = {.type = MID_REQ_LIST};
	struct mid_response *resp;
	bool first = true;
	int r = 0;

	if (argc > 1)
		return usage_error("list takes no arguments");
	if (o->field)
		return usage_error("--field works with issue, renew and revoke; use --json with list");
	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return EXIT_REFUSED;

	if (o->json)
		fputs("{\"leases\":[", stdout);
	else
		printf("%-16s  %-20s  %6s  %-8s  %-20s  %s\n", "LEASE", "ACCOUNT", "UID", "STATE",
		       "EXPIRES", "REASON");
	for (;;) {
		r = call(o, &req, resp);
		if (r != 0)
			break;
		for (unsigned i = 0; i < resp->count; i++) {
			const struct mid_lease_info *l = &resp->entries[i];
			char expires[32];

			if (o->json) {
				if (!first)
					fputc(',', stdout);
				lease_json(stdout, l, NULL);
			} else {
				format_time(l->expires_at, expires, sizeof(expires));
				printf("%-16s  %-20s  %6u  %-8s  %-20s  %s\n", l->lease, l->account,
				       l->uid, mid_lease_state_to_string(l->state), expires,
				       l->reason);
			}
			first = false;
		}
		req.offset += resp->count;
		if (resp->count == 0 || req.offset >= resp->total)
			break;
	}
	if (o->json)
		printf("],\"total\":%u}\n", resp->total);
	free(resp);
	return r;
}

static int cmd_status(const struct options *o, int argc, char **argv)
{
	struct mid_request req = {.type = MID_REQ_STATUS};
	struct mid_response *resp;
	char started[32];
	int r;

	if (argc > 1)
		return usage_error("status takes no arguments");
	if (o->field)
		return usage_error("--field works with issue, renew and revoke; use --json with status");
	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return EXIT_REFUSED;
	r = call(o, &req, resp);
	if (r == 0) {
		const struct mid_agent_status *s = &resp->agent;

		format_time(s->started_at, started, sizeof(started));
		if (o->json) {
			printf("{\"version\":");
			json_string(stdout, s->version);
			printf(",\"pid\":%u,\"started_at\":\"%s\",\"live_leases\":%u,\"total_leases\":%u,\"config\":",
			       s->pid, started, s->live_leases, s->total_leases);
			json_string(stdout, s->config_path);
			printf(",\"state_dir\":");
			json_string(stdout, s->state_dir);
			printf(",\"runtime_dir\":");
			json_string(stdout, s->runtime_dir);
			printf("}\n");
		} else {
			printf("mid-agentd %s, pid %u, running since %s\n", s->version, s->pid, started);
			printf("leases:      %u live, %u recorded\n", s->live_leases, s->total_leases);
			printf("policy:      %s\n", s->config_path);
			printf("state dir:   %s\n", s->state_dir);
			printf("runtime dir: %s\n", s->runtime_dir);
		}
	}
	free(resp);
	return r;
}

static int cmd_renew(const struct options *o, int argc, char **argv)
{
	return lease_command(o, MID_REQ_RENEW, argc, argv);
}

static int cmd_revoke(const struct options *o, int argc, char **argv)
{
	return lease_command(o, MID_REQ_REVOKE, argc, argv);
}

static const struct {
	const char *name;
	int (*run)(const struct options *o, int argc, char **argv);
} commands[] = {
	{"issue", cmd_issue},       {"renew", cmd_renew},     {"revoke", cmd_revoke},
	{"list", cmd_list},         {"status", cmd_status},   {"requests", cmd_requests},
	{"approve", cmd_approve},   {"deny", cmd_deny},       {"collect", cmd_collect},
	{"explain", cmd_explain},   {"unlock", cmd_unlock},   {"reload", cmd_reload},
	{"sessions", cmd_sessions}, {"kill", cmd_kill},       {"audit", cmd_audit},
	{"report", cmd_report},
};

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"field", required_argument, NULL, 'F'},  {"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
		{},
	};
	struct options o = {.socket_path = MID_DEFAULT_SOCKET, .timeout_ms = 5000};
	const char *env = getenv("MID_SOCKET");
	const char *cmd;
	int c;

	if (env && *env)
		o.socket_path = env;
	while ((c = getopt_long(argc, argv, "+s:jF:t:hV", options, NULL)) >= 0) {
		switch (c) {
		case 's':
			o.socket_path = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'F':
			o.field = optarg;
			break;
		case 't': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > 600000)
				return usage_error("invalid --timeout \"%s\": give milliseconds, 1 to 600000",
						   optarg);
			o.timeout_ms = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("midctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (o.json && o.field)
		return usage_error("--json and --field exclude each other");
	if (o.field) {
		struct mid_lease_info probe = {0};
		char value[MID_TEXT_MAX + 64];

		/* Checked before any request: a misspelt field must not issue a
		 * credential that is then never printed. */
		if (!lease_field(&probe, "", o.field, value, sizeof(value)) &&
		    strcmp(o.field, "request") != 0)
			return usage_error("unknown field \"%s\"; use lease, account, class, uid, gid, "
					   "credential, expires_at, created_at, ttl, state, uses, max_uses, reason or request",
					   o.field);
	}
	if (optind >= argc)
		return usage_error("missing COMMAND");

	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	for (size_t i = 0; i < MID_ELEMENTSOF(commands); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(&o, argc, argv);
	return usage_error("unknown command \"%s\"", cmd);
}

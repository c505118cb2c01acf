/* midctl: the command line for sysadmins and automation to issue, renew,
 * revoke and list credentials held by mid-agentd. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "duration.h"
#include "names.h"
#include "protocol.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

struct options {
	const char *socket_path;
	const char *field;
	bool json;
	int timeout_ms;
};

MID_PRINTF(1, 2)
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("midctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; see midctl --help\n", stderr);
	return EXIT_USAGE;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: midctl [--socket PATH] [--json | --field NAME] COMMAND [ARGS]\n"
		"Ask mid-agentd for just-in-time credentials for machine accounts.\n\n"
		"Commands:\n"
		"  issue ACCOUNT [--ttl D] [--uses N] [--reason TEXT]   credential for an account\n"
		"  issue --class CLASS [--ttl D] [--uses N] [--reason TEXT]\n"
		"                                          credential for a new ephemeral account\n"
		"  renew LEASE [--ttl D]                   extend a lease, up to its max_ttl\n"
		"  revoke LEASE [--reason TEXT]            end a lease now\n"
		"  list                                    show leases (root sees all)\n"
		"  status                                  show the agent's state\n\n"
		"Options:\n"
		"  -s, --socket PATH   agent socket (default %s)\n"
		"  -j, --json          print one JSON object\n"
		"  -F, --field NAME    print one field raw (lease, account, uid, credential,\n"
		"                      expires_at, ttl, ...), for shell scripts\n"
		"  -t, --timeout MS    how long to wait for the agent (default 5000)\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n\n"
		"Durations read as 30s, 15m, 8h, 2d or 1h30m.\n"
		"Exit status: 0 success, 1 refused by the agent, 2 usage error, 3 agent unreachable.\n",
		MID_DEFAULT_SOCKET);
}

static void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static int64_t seconds_left(const struct mid_lease_info *l)
{
	int64_t left = l->expires_at - (int64_t)time(NULL);

	return l->state == MID_LEASE_LIVE && left > 0 ? left : 0;
}

/* Writes the value of one named field into buf; returns false for an
 * unknown field name. */
static bool lease_field(const struct mid_lease_info *l, const char *credential, const char *name,
			char *buf, size_t size)
{
	if (strcmp(name, "lease") == 0)
		snprintf(buf, size, "%s", l->lease);
	else if (strcmp(name, "account") == 0)
		snprintf(buf, size, "%s", l->account);
	else if (strcmp(name, "class") == 0)
		snprintf(buf, size, "%s", l->class_name);
	else if (strcmp(name, "uid") == 0)
		snprintf(buf, size, "%u", l->uid);
	else if (strcmp(name, "gid") == 0)
		snprintf(buf, size, "%u", l->gid);
	else if (strcmp(name, "credential") == 0 && credential)
		snprintf(buf, size, "%s", credential);
	else if (strcmp(name, "expires_at") == 0)
		format_time(l->expires_at, buf, size);
	else if (strcmp(name, "created_at") == 0)
		format_time(l->created_at, buf, size);
	else if (strcmp(name, "ttl") == 0)
		snprintf(buf, size, "%lld", (long long)seconds_left(l));
	else if (strcmp(name, "state") == 0)
		snprintf(buf, size, "%s", mid_lease_state_to_string(l->state));
	else if (strcmp(name, "uses") == 0)
		snprintf(buf, size, "%u", l->uses);
	else if (strcmp(name, "max_uses") == 0)
		snprintf(buf, size, "%u", l->max_uses);
	else if (strcmp(name, "reason") == 0)
		snprintf(buf, size, "%s", l->reason);
	else
		return false;
	return true;
}

static void lease_json(FILE *f, const struct mid_lease_info *l, const char *credential)
{
	char created[32], expires[32];

	format_time(l->created_at, created, sizeof(created));
	format_time(l->expires_at, expires, sizeof(expires));
	fputs("{\"lease\":", f);
	json_string(f, l->lease);
	fputs(",\"account\":", f);
	json_string(f, l->account);
	fputs(",\"class\":", f);
	json_string(f, l->class_name);
	fprintf(f, ",\"uid\":%u,\"gid\":%u", l->uid, l->gid);
	if (credential) {
		fputs(",\"credential\":", f);
		json_string(f, credential);
	}
	fprintf(f, ",\"created_at\":\"%s\",\"expires_at\":\"%s\",\"ttl\":%lld", created, expires,
		(long long)seconds_left(l));
	fprintf(f, ",\"state\":\"%s\",\"uses\":%u,\"max_uses\":%u,\"reason\":",
		mid_lease_state_to_string(l->state), l->uses, l->max_uses);
	json_string(f, l->reason);
	fputc('}', f);
}

static int print_lease(const struct options *o, const struct mid_lease_info *l,
		       const char *credential)
{
	char expires[32], left[32], value[MID_TEXT_MAX + 64];

	if (o->field) {
		if (!lease_field(l, credential, o->field, value, sizeof(value)))
			return usage_error("unknown field \"%s\"", o->field);
		printf("%s\n", value);
		return 0;
	}
	if (o->json) {
		lease_json(stdout, l, credential);
		fputc('\n', stdout);
		return 0;
	}

	format_time(l->expires_at, expires, sizeof(expires));
	duration_format((uint64_t)seconds_left(l), left, sizeof(left));
	if (credential)
		printf("credential: %s\n", credential);
	printf("lease:      %s\n", l->lease);
	printf("account:    %s (uid %u)\n", l->account, l->uid);
	if (l->class_name[0])
		printf("class:      %s\n", l->class_name);
	printf("state:      %s\n", mid_lease_state_to_string(l->state));
	printf("expires:    %s (in %s)\n", expires, left);
	if (l->max_uses > 0)
		printf("uses:       %u of %u\n", l->uses, l->max_uses);
	return 0;
}

static int call(const struct options *o, const struct mid_request *req, struct mid_response *resp)
{
	int r = mid_client_call(o->socket_path, o->timeout_ms, req, resp);

	if (r == -ENOENT || r == -ECONNREFUSED) {
		fprintf(stderr, "midctl: mid-agentd is not running at %s; start mid-agentd.socket or pass --socket\n",
			o->socket_path);
		return EXIT_UNREACHABLE;
	}
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "midctl: mid-agentd at %s did not answer within %d ms\n",
			o->socket_path, o->timeout_ms);
		return EXIT_UNREACHABLE;
	}
	if (r < 0) {
		fprintf(stderr, "midctl: failed to talk to mid-agentd at %s: %s\n", o->socket_path,
			strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (resp->status != MID_OK) {
		fprintf(stderr, "midctl: %s: %s\n", mid_status_to_string(resp->status), resp->message);
		return EXIT_REFUSED;
	}
	return 0;
}

static int parse_ttl(const char *text, uint32_t *ret)
{
	uint64_t seconds;
	int r = duration_parse(text, &seconds);

	if (r < 0 || seconds == 0) {
		usage_error("invalid duration \"%s\": write for example 30s, 15m, 8h or 2d", text);
		return -EINVAL;
	}
	*ret = (uint32_t)seconds;
	return 0;
}

static int parse_uses(const char *text, uint32_t *ret)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end || text[0] == '-' || v > UINT32_MAX) {
		usage_error("invalid --uses \"%s\": give a whole number, 0 for unlimited", text);
		return -EINVAL;
	}
	*ret = (uint32_t)v;
	return 0;
}

static int copy_arg(char *dst, size_t size, const char *value, const char *what)
{
	if (strlen(value) >= size) {
		usage_error("%s is too long: at most %zu bytes", what, size - 1);
		return -EINVAL;
	}
	strcpy(dst, value);
	return 0;
}

static int cmd_issue(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"class", required_argument, NULL, 'C'}, {"ttl", required_argument, NULL, 'T'},
		{"uses", required_argument, NULL, 'U'},  {"reason", required_argument, NULL, 'R'},
		{"service", required_argument, NULL, 'S'}, {"source", required_argument, NULL, 'O'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_ISSUE};
	struct mid_response *resp;
	int c, r;

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

	resp = calloc(1, sizeof(*resp));
	if (!resp)
		return EXIT_REFUSED;
	r = call(o, &req, resp);
	if (r == 0)
		r = print_lease(o, &resp->lease, resp->credential);
	mid_response_wipe(resp);
	free(resp);
	return r;
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
	if (o->json && r == 0)
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
	if (optind >= argc)
		return usage_error("missing COMMAND");

	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "issue") == 0)
		return cmd_issue(&o, argc, argv);
	if (strcmp(cmd, "renew") == 0)
		return lease_command(&o, MID_REQ_RENEW, argc, argv);
	if (strcmp(cmd, "revoke") == 0)
		return lease_command(&o, MID_REQ_REVOKE, argc, argv);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(&o, argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(&o, argc, argv);
	return usage_error("unknown command \"%s\"", cmd);
}

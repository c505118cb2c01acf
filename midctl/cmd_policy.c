/* midctl explain, unlock and reload: show how the policy decides a login,
 * clear lockouts, and make the agent re-read mid.conf. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "midctl.h"
#include "names.h"

/* Parses the --at of explain: "now", "+DURATION" (that long from now), or
 * anything parse_time reads: RFC 3339 UTC, a date (midnight UTC) or a bare
 * duration, which means that long ago. */
static int parse_at(const char *text, int64_t *ret)
{
	uint64_t ahead;
	int64_t t;

	if (strcmp(text, "now") == 0)
		t = (int64_t)time(NULL);
	else if (text[0] == '+') {
		if (duration_parse(text + 1, &ahead) < 0)
			return -EINVAL;
		t = (int64_t)time(NULL) + (int64_t)ahead;
	} else if (parse_time(text, &t) < 0)
		return -EINVAL;

	/* The request carries 0 for "now", so the Epoch itself and earlier
	 * times cannot be asked for. */
	if (t <= 0)
		return -ERANGE;
	*ret = t;
	return 0;
}

static int options_reject_field(const struct options *o, const char *command)
{
	if (o->field)
		return usage_error("--field works with issue, renew and revoke, not with %s",
				   command);
	return 0;
}

/* Prints each non-empty line of an agent's multi-line detail text to f. */
static void detail_print(FILE *f, const char *detail)
{
	const char *line = detail;

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > 0)
			fprintf(f, "%.*s\n", (int)len, line);
		if (!end)
			break;
		line = end + 1;
	}
}

static void detail_json(FILE *f, const char *detail)
{
	const char *line = detail;
	bool first = true;

	fputc('[', f);
	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char text[MID_DETAIL_MAX + 1];

		if (len > 0) {
			memcpy(text, line, len);
			text[len] = '\0';
			if (!first)
				fputc(',', f);
			json_string(f, text);
			first = false;
		}
		if (!end)
			break;
		line = end + 1;
	}
	fputc(']', f);
}

int cmd_explain(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"class", required_argument, NULL, 'C'},  {"service", required_argument, NULL, 'S'},
		{"source", required_argument, NULL, 'O'}, {"at", required_argument, NULL, 'A'},
		{"as", required_argument, NULL, 'U'},     {},
	};
	struct mid_request req = {.type = MID_REQ_EXPLAIN};
	struct mid_response *resp;
	bool allowed;
	int c, r;

	r = options_reject_field(o, argv[0]);
	if (r != 0)
		return r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'C':
			if (!name_is_valid(optarg))
				return usage_error("invalid class name \"%s\"", optarg);
			strcpy(req.class_name, optarg);
			break;
		case 'S':
			if (copy_arg(req.service, sizeof(req.service), optarg, "service name") < 0)
				return EXIT_USAGE;
			break;
		case 'O':
			/* "local" is a login with no remote host, which PAM
			 * reports as an unset PAM_RHOST. */
			if (strcmp(optarg, "local") == 0)
				req.rhost[0] = '\0';
			else if (!*optarg)
				return usage_error("--source needs an address or \"local\"");
			else if (copy_arg(req.rhost, sizeof(req.rhost), optarg, "source") < 0)
				return EXIT_USAGE;
			break;
		case 'A':
			if (parse_at(optarg, &req.at) < 0)
				return usage_error("invalid --at \"%s\": give an RFC 3339 UTC "
						   "time (2026-12-04T20:15:00Z), a date "
						   "(2026-12-04), now, +DURATION from now or "
						   "DURATION ago",
						   optarg);
			break;
		case 'U':
			if (!name_is_valid(optarg))
				return usage_error("invalid user name \"%s\" for --as", optarg);
			strcpy(req.as_user, optarg);
			break;
		default:
			return usage_error("invalid option for explain");
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
		return usage_error("explain needs an ACCOUNT or --class CLASS");

	resp = response_new();
	r = call(o, &req, resp);
	if (r != 0) {
		free(resp);
		return r;
	}

	/* The agent sends MID_OK for both verdicts, and a refusal's message
	 * starts with "denied". */
	allowed = strncmp(resp->message, "denied", strlen("denied")) != 0;
	if (o->json) {
		printf("{\"allowed\":%s,\"verdict\":", allowed ? "true" : "false");
		json_string(stdout, resp->message);
		fputs(",\"lines\":", stdout);
		detail_json(stdout, resp->detail);
		fputs("}\n", stdout);
	} else {
		detail_print(stdout, resp->detail);
		printf("%s\n", resp->message);
	}
	free(resp);
	return allowed ? 0 : EXIT_REFUSED;
}

int cmd_unlock(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"source", required_argument, NULL, 'O'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_UNLOCK};
	struct mid_response *resp;
	int c, r;

	r = options_reject_field(o, argv[0]);
	if (r != 0)
		return r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (c != 'O')
			return usage_error("invalid option for unlock");
		/* Sent as typed: the agent keys a lock by the PAM_RHOST text and checks it. */
		if (!*optarg)
			return usage_error("--source needs the address that was locked");
		if (copy_arg(req.rhost, sizeof(req.rhost), optarg, "source") < 0)
			return EXIT_USAGE;
	}
	if (optind < argc) {
		if (!name_is_valid(argv[optind]))
			return usage_error("invalid account name \"%s\"", argv[optind]);
		strcpy(req.account, argv[optind++]);
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!req.account[0] && !req.rhost[0])
		return usage_error("unlock needs an ACCOUNT, a --source address or both");

	resp = response_new();
	r = call(o, &req, resp);
	if (r == 0) {
		if (o->json) {
			fputs("{\"message\":", stdout);
			json_string(stdout, resp->message);
			fputs("}\n", stdout);
		} else
			printf("%s\n", resp->message);
	}
	free(resp);
	return r;
}

int cmd_reload(const struct options *o, int argc, char **argv)
{
	struct mid_request req = {.type = MID_REQ_RELOAD};
	struct mid_response *resp;
	int r;

	r = options_reject_field(o, argv[0]);
	if (r != 0)
		return r;
	if (argc > 1)
		return usage_error("reload takes no arguments");

	resp = response_new();
	r = call(o, &req, resp);
	if (r == EXIT_REFUSED)
		/* call() printed the message. The detail contains one
		 * "FILE:LINE: message" line per error in the policy. */
		detail_print(stderr, resp->detail);
	else if (r == 0 && o->json) {
		fputs("{\"message\":", stdout);
		json_string(stdout, resp->message);
		fputs("}\n", stdout);
	} else if (r == 0)
		printf("%s\n", resp->message);
	free(resp);
	return r;
}

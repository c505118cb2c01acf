/* Helpers every midctl command shares: talking to the agent, parsing
 * arguments and printing leases as text, JSON or one raw field. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "midctl.h"

MID_PRINTF(1, 2)
int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("midctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; see midctl --help\n", stderr);
	return EXIT_USAGE;
}

void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void json_string(FILE *f, const char *s)
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

int64_t seconds_left(const struct mid_lease_info *l)
{
	int64_t left = l->expires_at - (int64_t)time(NULL);

	return l->state == MID_LEASE_LIVE && left > 0 ? left : 0;
}

/* Writes the value of one named field into buf; returns false for an
 * unknown field name. */
bool lease_field(const struct mid_lease_info *l, const char *credential, const char *name,
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

void lease_json(FILE *f, const struct mid_lease_info *l, const char *credential)
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

int print_lease(const struct options *o, const struct mid_lease_info *l,
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

int call(const struct options *o, const struct mid_request *req, struct mid_response *resp)
{
	return call_accepting(o, req, resp, false);
}

int call_accepting(const struct options *o, const struct mid_request *req,
		   struct mid_response *resp, bool accept_pending)
{
	int r = mid_client_call(o->socket_path, o->timeout_ms, req, resp);

	if (r == -ENOENT || r == -ECONNREFUSED) {
		fprintf(stderr, "midctl: mid-agentd is not running at %s; start mid-agentd.socket or pass --socket\n",
			o->socket_path);
		return EXIT_UNREACHABLE;
	}
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "midctl: mid-agentd at %s did not respond within %d ms; check that it runs, or raise --timeout\n",
			o->socket_path, o->timeout_ms);
		return EXIT_UNREACHABLE;
	}
	if (r < 0) {
		fprintf(stderr, "midctl: failed to talk to mid-agentd at %s: %s\n", o->socket_path,
			strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (resp->status != MID_OK && !(accept_pending && resp->status == MID_PENDING)) {
		fprintf(stderr, "midctl: %s: %s\n", mid_status_to_string(resp->status), resp->message);
		return EXIT_REFUSED;
	}
	return 0;
}

int parse_ttl(const char *text, uint32_t *ret)
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

int parse_uses(const char *text, uint32_t *ret)
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

int copy_arg(char *dst, size_t size, const char *value, const char *what)
{
	if (strlen(value) >= size) {
		usage_error("%s is too long: at most %zu bytes", what, size - 1);
		return -EINVAL;
	}
	strcpy(dst, value);
	return 0;
}


int parse_time(const char *text, int64_t *ret)
{
	struct tm tm = {0};
	uint64_t ago;
	const char *end;

	if (!text || !*text)
		return -EINVAL;
	if (duration_parse(text, &ago) == 0) {
		*ret = (int64_t)time(NULL) - (int64_t)ago;
		return 0;
	}
	end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(text, "%Y-%m-%d", &tm);
	}
	if (!end || *end)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

struct mid_response *response_new(void)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	if (!resp) {
		fputs("midctl: out of memory\n", stderr);
		exit(EXIT_REFUSED);
	}
	return resp;
}

/* midctl internals: the options every command gets and the helpers
 * they share. Each group of commands lives in its own file. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "macro.h"
#include "protocol.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_PENDING 4 /* the request waits for approval: no credential yet */

struct options {
	const char *socket_path;
	const char *field;
	bool json;
	int timeout_ms;
};

/* Prints "midctl: <message>; see midctl --help" and returns EXIT_USAGE. */
MID_PRINTF(1, 2) int usage_error(const char *fmt, ...);
/* Formats t as RFC 3339 UTC ("2026-12-04T20:15:00Z"). */
void format_time(int64_t t, char *buf, size_t size);
/* Parses an RFC 3339 UTC time, a date, or a duration ago ("1h" = an hour
 * ago). Returns 0 or -EINVAL. */
MID_MUST_CHECK int parse_time(const char *text, int64_t *ret);
void json_string(FILE *f, const char *s);
int64_t seconds_left(const struct mid_lease_info *l);
bool lease_field(const struct mid_lease_info *l, const char *credential, const char *name,
		 char *buf, size_t size);
void lease_json(FILE *f, const struct mid_lease_info *l, const char *credential);
int print_lease(const struct options *o, const struct mid_lease_info *l, const char *credential);
/* Sends req; returns 0 on MID_OK, else prints the reason and returns the
 * exit status. */
int call(const struct options *o, const struct mid_request *req, struct mid_response *resp);
/* Like call(), and with accept_pending a MID_PENDING reply returns 0 too. */
int call_accepting(const struct options *o, const struct mid_request *req,
		   struct mid_response *resp, bool accept_pending);
MID_MUST_CHECK int parse_ttl(const char *text, uint32_t *ret);
MID_MUST_CHECK int parse_uses(const char *text, uint32_t *ret);
MID_MUST_CHECK int copy_arg(char *dst, size_t size, const char *value, const char *what);
/* Allocates a zeroed response; exits on allocation failure. */
struct mid_response *response_new(void);

/* Sends an ISSUE request and prints the credential. For a rule that
 * needs approval it prints the pending request and returns EXIT_PENDING,
 * or with wait polls until the request is approved (printing the
 * credential), denied, expired, or wait_timeout seconds passed (0: until
 * the request expires). */
int issue_send(const struct options *o, const struct mid_request *req, bool wait,
	       uint32_t wait_timeout);

/* Commands, each given argv[0] = its name. */
int cmd_approve(const struct options *o, int argc, char **argv);
int cmd_deny(const struct options *o, int argc, char **argv);
int cmd_collect(const struct options *o, int argc, char **argv);
int cmd_requests(const struct options *o, int argc, char **argv);
int cmd_unlock(const struct options *o, int argc, char **argv);
int cmd_reload(const struct options *o, int argc, char **argv);
int cmd_explain(const struct options *o, int argc, char **argv);
int cmd_sessions(const struct options *o, int argc, char **argv);
int cmd_kill(const struct options *o, int argc, char **argv);
int cmd_audit(const struct options *o, int argc, char **argv);
int cmd_report(const struct options *o, int argc, char **argv);

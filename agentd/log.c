/* Journal and stderr logging for mid-agentd. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "names.h"
#include "protocol.h"

#define FIELD_MAX 160 /* escaped length cap per field value */

static bool log_to_journal;
static bool log_debug_on;

void log_setup(bool use_journal, bool debug)
{
	log_to_journal = use_journal;
	log_debug_on = debug;
}

bool log_debug_enabled(void)
{
	return log_debug_on;
}

/* Writes text with control characters as \xNN, so a message that carries
 * text from a request or from SQLite stays on one line. */
static void put_escaped(const char *text, FILE *f)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

static void write_stderr(int priority, const char *message, const char *extra)
{
	static const char *const levels[] = {"emerg", "alert", "crit",   "error",
					     "warning", "notice", "info", "debug"};
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s mid-agentd[%ld]: %s: ", stamp, (long)getpid(), levels[priority & 7]);
	put_escaped(message, stderr);
	fputs(extra ? extra : "", stderr);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void log_msg(int priority, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);

	if (log_to_journal && sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", priority,
					      "SYSLOG_IDENTIFIER=mid-agentd", NULL) >= 0)
		return;
	write_stderr(priority, message, NULL);
}

void log_event(int priority, const struct log_fields *f, const char *fmt, ...)
{
	char message[1024], account[FIELD_MAX], lease[FIELD_MAX], service[FIELD_MAX],
		rhost[FIELD_MAX], reason[FIELD_MAX], extra[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);

	text_escape(f->account, account, sizeof(account));
	text_escape(f->lease, lease, sizeof(lease));
	text_escape(f->service, service, sizeof(service));
	text_escape(f->rhost, rhost, sizeof(rhost));
	text_escape(f->reason, reason, sizeof(reason));

	if (log_to_journal &&
	    sd_journal_send("MESSAGE=%s", message, "PRIORITY=%i", priority,
			    "SYSLOG_IDENTIFIER=mid-agentd", "MESSAGE_ID=%s",
			    f->message_id ? f->message_id : "", "MID_ACCOUNT=%s", account,
			    "MID_LEASE=%s", lease, "MID_SERVICE=%s", service, "MID_RHOST=%s", rhost,
			    "MID_REASON=%s", reason, "MID_PEER_UID=%ld", f->peer_uid,
			    "MID_EXPIRES_AT=%lld", f->expires_at, NULL) >= 0)
		return;

	snprintf(extra, sizeof(extra), "%s%s%s%s%s%s%s%s%s%s", f->account ? " account=" : "",
		 f->account ? account : "", f->lease ? " lease=" : "", f->lease ? lease : "",
		 f->service ? " service=" : "", f->service ? service : "",
		 f->rhost && *f->rhost ? " rhost=" : "", f->rhost && *f->rhost ? rhost : "",
		 f->reason ? " reason=" : "", f->reason ? reason : "");
	if (f->peer_uid >= 0) {
		size_t len = strlen(extra);
		snprintf(extra + len, sizeof(extra) - len, " peer_uid=%ld", f->peer_uid);
	}
	write_stderr(priority, message, extra);
}

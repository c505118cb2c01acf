/* Journal and stderr logging for mid-agentd. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "names.h"
#include "protocol.h"

#define FIELD_MAX 160 /* escaped length cap per field value */

static bool log_to_journal;
static bool log_debug_on;

static void prefix_forget(void);

void log_setup(bool use_journal, bool debug)
{
	static bool registered;

	log_to_journal = use_journal;
	log_debug_on = debug;
	if (!registered)
		registered = pthread_atfork(NULL, NULL, prefix_forget) == 0;
}

bool log_debug_enabled(void)
{
	return log_debug_on;
}

/* Lines written while a batch of requests is handled wait here and go out
 * in one write when it ends, because a write per line costs more than the
 * verification it reports. */
static char held[64 * 1024];
static size_t held_len;
static bool holding;

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

void log_hold(void)
{
	holding = true;
}

void log_release(void)
{
	write_all(held, held_len);
	held_len = 0;
	holding = false;
}

/* Copies text with control characters as \xNN, so a message that carries
 * text from a request or from SQLite stays on one line. Returns the length
 * written. Text that does not fit is cut at a whole escape. */
static size_t copy_escaped(const char *text, char *out, size_t out_size)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			if (o + 4 >= out_size)
				break;
			o += (size_t)snprintf(out + o, 5, "\\x%02x", *p);
		} else {
			if (o + 1 >= out_size)
				break;
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
	return o;
}

/* The time and pid that start each line are formatted once a second. A
 * forked child formats its own at once. */
static char prefix[64];
static size_t prefix_len;
static time_t prefix_time = -1;

static void prefix_forget(void)
{
	prefix_time = -1;
}

static void write_stderr(int priority, const char *message, const char *extra)
{
	static const char *const levels[] = {"emerg", "alert", "crit",   "error",
					     "warning", "notice", "info", "debug"};
	char line[6 * 1024];
	time_t now = time(NULL);
	size_t n;
	int head;

	if (now != prefix_time) {
		struct tm tm;

		gmtime_r(&now, &tm);
		prefix_len = strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%SZ", &tm);
		head = snprintf(prefix + prefix_len, sizeof(prefix) - prefix_len, " mid-agentd[%ld]: ",
				(long)getpid());
		if (head < 0 || (size_t)head >= sizeof(prefix) - prefix_len)
			return;
		prefix_len += (size_t)head;
		prefix_time = now;
	}
	memcpy(line, prefix, prefix_len);
	n = prefix_len;
	head = snprintf(line + n, sizeof(line) - n, "%s: ", levels[priority & 7]);
	if (head < 0)
		return;
	n += (size_t)head;
	/* Room is kept for the extra fields and the newline. */
	n += copy_escaped(message, line + n, sizeof(line) - n - 1100);
	n += copy_escaped(extra ? extra : "", line + n, sizeof(line) - n - 1);
	line[n++] = '\n';

	if (!holding) {
		write_all(line, n);
		return;
	}
	if (held_len + n > sizeof(held)) {
		write_all(held, held_len);
		held_len = 0;
	}
	memcpy(held + held_len, line, n);
	held_len += n;
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

/* Structured logging for mid-agentd: to the journal when it is reachable,
 * else one line per event on stderr. Field values from requests are
 * escaped and length-capped before they are written. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Stable MESSAGE_IDs, one per event type (documented in mid-agentd(8)). */
#define MID_MESSAGE_ISSUED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a01"
#define MID_MESSAGE_VERIFIED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a02"
#define MID_MESSAGE_VERIFY_FAILED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a03"
#define MID_MESSAGE_REVOKED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a04"
#define MID_MESSAGE_EXPIRED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a05"
#define MID_MESSAGE_RENEWED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a06"
#define MID_MESSAGE_DENIED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a07"
#define MID_MESSAGE_STARTED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a08"
#define MID_MESSAGE_STOPPED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a09"
#define MID_MESSAGE_RELOADED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a0a"
#define MID_MESSAGE_SESSION "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a0b"
#define MID_MESSAGE_LOCKOUT "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a0c"
#define MID_MESSAGE_APPROVAL "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a0d"
#define MID_MESSAGE_SESSION_TERMINATED "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a0e"
#define MID_MESSAGE_ACCOUNT "8d9c5e0e6f2a4c1b9a3e7d1f2b4c6a0f"

/* Fields of one event. The journal gets every field, empty (or -1, 0)
 * when unset; the stderr line leaves unset fields out. */
struct log_fields {
	const char *message_id;
	const char *account;
	const char *lease;
	const char *service;
	const char *rhost;
	const char *reason;
	long peer_uid; /* -1: none */
	long long expires_at;
};

void log_setup(bool use_journal, bool debug);
MID_PRINTF(2, 3) void log_msg(int priority, const char *fmt, ...);
MID_PRINTF(3, 4) void log_event(int priority, const struct log_fields *f, const char *fmt, ...);
bool log_debug_enabled(void);
/* Between log_hold and log_release, stderr lines are collected and written
 * together; the journal gets each event at once. */
void log_hold(void);
void log_release(void);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_debug_enabled())                                                           \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

/* Checks of account names and lease ids taken from untrusted input, and
 * escaping of such text before it reaches a log. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True for a name useradd would accept: 1 to MID_NAME_MAX bytes of
 * [A-Za-z0-9_.-], not starting with '-' or '.', and not all digits (it
 * would read as a UID). */
bool name_is_valid(const char *name);
/* True for a lease id: exactly MID_LEASE_ID_LEN lowercase hex digits. */
bool lease_id_is_valid(const char *id);
#define MID_LEASE_ID_LEN 16

/* Copies text into out with control characters, backslashes, quotes and
 * bytes >= 0x7f written as \xNN, cut to fit out_size (which includes the
 * NUL); a cut is marked with "...". Returns out. */
char *text_escape(const char *text, char *out, size_t out_size);

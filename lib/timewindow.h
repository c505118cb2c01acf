/* Time windows such as "Mon-Fri 08:00-18:00", "Sat 10:00-12:00",
 * "Mon,Wed 22:00-02:00" (through midnight) or "00:00-24:00" (every day),
 * evaluated in local time of a named time zone. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

struct time_window {
	uint8_t days;       /* bit 0 is Monday ... bit 6 Sunday */
	uint16_t start_min; /* minutes after midnight, 0..1439 */
	uint16_t end_min;   /* 0..1440; below start_min the window runs past midnight (0 is midnight) */
};

/* Parses a window. Days are Mon Tue Wed Thu Fri Sat Sun, as ranges
 * ("Mon-Fri", "Fri-Mon" wraps) or lists ("Mon,Wed"); without days the
 * window applies every day. Returns 0 or -EINVAL. */
MID_MUST_CHECK int time_window_parse(const char *text, struct time_window *ret);
/* True when the local time tm (tm_wday, tm_hour, tm_min) is inside w. A
 * window past midnight belongs to the day it starts on. */
bool time_window_contains(const struct time_window *w, const struct tm *tm);
/* Converts t to local time in the IANA zone tz (NULL or "": the host's
 * zone). Returns 0, or -EINVAL for a zone that is not installed. */
MID_MUST_CHECK int time_local(int64_t t, const char *tz, struct tm *ret);

/* Parsing and evaluation of weekly time windows. */
#include "timewindow.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const day_names[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

static int parse_day(const char *s, size_t len)
{
	for (int i = 0; i < 7; i++)
		if (len == 3 && strncasecmp(s, day_names[i], 3) == 0)
			return i;
	return -EINVAL;
}

/* "Mon", "Mon-Fri" or a comma list of those. */
static int parse_days(const char *s, size_t len, uint8_t *ret)
{
	uint8_t days = 0;
	size_t i = 0;

	while (i < len) {
		size_t start = i;
		int from, to;

		while (i < len && s[i] != ',' && s[i] != '-')
			i++;
		from = parse_day(s + start, i - start);
		if (from < 0)
			return -EINVAL;
		to = from;
		if (i < len && s[i] == '-') {
			size_t second = ++i;

			while (i < len && s[i] != ',')
				i++;
			to = parse_day(s + second, i - second);
			if (to < 0)
				return -EINVAL;
		}
		for (int d = from;; d = (d + 1) % 7) {
			days |= (uint8_t)(1u << d);
			if (d == to)
				break;
		}
		if (i < len) {
			i++; /* the comma */
			if (i == len)
				return -EINVAL;
		}
	}
	if (!days)
		return -EINVAL;
	*ret = days;
	return 0;
}

static int parse_clock(const char *s, size_t len, bool allow_24, uint16_t *ret)
{
	unsigned h, m;

	if (len != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -EINVAL;
	h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
		return -EINVAL;
	*ret = (uint16_t)(h * 60 + m);
	return 0;
}

int time_window_parse(const char *text, struct time_window *ret)
{
	struct time_window w = {.days = 0x7f};
	const char *clock, *space, *dash;

	if (!text || strlen(text) > 64)
		return -EINVAL;
	space = strchr(text, ' ');
	clock = text;
	if (space) {
		if (parse_days(text, (size_t)(space - text), &w.days) < 0)
			return -EINVAL;
		clock = space + 1;
	}
	dash = strchr(clock, '-');
	if (!dash)
		return -EINVAL;
	if (parse_clock(clock, (size_t)(dash - clock), false, &w.start_min) < 0 ||
	    parse_clock(dash + 1, strlen(dash + 1), true, &w.end_min) < 0)
		return -EINVAL;
	if (w.start_min == w.end_min)
		return -EINVAL;
	*ret = w;
	return 0;
}

bool time_window_contains(const struct time_window *w, const struct tm *tm)
{
	int today = (tm->tm_wday + 6) % 7; /* tm_wday 0 is Sunday */
	int yesterday = (today + 6) % 7;
	unsigned now = (unsigned)(tm->tm_hour * 60 + tm->tm_min);

	if (w->start_min < w->end_min)
		return (w->days & (1u << today)) && now >= w->start_min && now < w->end_min;
	/* Past midnight: the evening part today, or the morning part of a
	 * window that started yesterday. */
	if ((w->days & (1u << today)) && now >= w->start_min)
		return true;
	return (w->days & (1u << yesterday)) && now < w->end_min;
}

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

int time_local(int64_t t, const char *tz, struct tm *ret)
{
	time_t tt = (time_t)t;
	char path[256];
	struct stat st;
	char *saved = NULL;
	const char *old;
	bool ok;

	if (!tz || !*tz) {
		ok = localtime_r(&tt, ret) != NULL;
		return ok ? 0 : -EINVAL;
	}
	/* An unknown zone would silently read as UTC: require its file. */
	if (strstr(tz, "..") || tz[0] == '/' ||
	    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz) >= (int)sizeof(path) ||
	    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return -EINVAL;

	/* localtime_r has no zone argument: switch TZ under a lock. */
	pthread_mutex_lock(&tz_lock);
	old = getenv("TZ");
	if (old)
		saved = strdup(old);
	setenv("TZ", tz, 1);
	tzset();
	ok = localtime_r(&tt, ret) != NULL;
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	pthread_mutex_unlock(&tz_lock);
	free(saved);
	return ok ? 0 : -EINVAL;
}

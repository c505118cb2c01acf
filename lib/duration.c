/* Parsing and formatting of durations. */
#include "duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const struct {
	char suffix;
	uint64_t seconds;
} units[] = {
	{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1},
};

static int unit_seconds(char c, uint64_t *ret)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(units); i++)
		if (units[i].suffix == c) {
			*ret = units[i].seconds;
			return 0;
		}
	return -EINVAL;
}

int duration_parse(const char *s, uint64_t *ret_seconds)
{
	uint64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;

	while (*p) {
		uint64_t value = 0, unit = 1;
		const char *digits = p;

		while (isdigit((unsigned char)*p)) {
			if (value > (MID_DURATION_MAX - (uint64_t)(*p - '0')) / 10)
				return -ERANGE;
			value = value * 10 + (uint64_t)(*p - '0');
			p++;
		}
		if (p == digits)
			return -EINVAL;
		if (*p) {
			if (unit_seconds(*p, &unit) < 0)
				return -EINVAL;
			p++;
		} else if (digits != s) {
			/* "1h30" is ambiguous: only a lone number may omit the unit. */
			return -EINVAL;
		}
		if (value > MID_DURATION_MAX / unit || total > MID_DURATION_MAX - value * unit)
			return -ERANGE;
		total += value * unit;
	}

	*ret_seconds = total;
	return 0;
}

void duration_format(uint64_t seconds, char *buf, size_t size)
{
	size_t pos = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (seconds == 0) {
		snprintf(buf, size, "0s");
		return;
	}
	/* Weeks are left out: "14d" reads better than "2w". */
	for (size_t i = 1; i < MID_ELEMENTSOF(units) && pos < size; i++) {
		uint64_t n = seconds / units[i].seconds;
		int w;

		if (n == 0)
			continue;
		seconds -= n * units[i].seconds;
		w = snprintf(buf + pos, size - pos, "%llu%c", (unsigned long long)n, units[i].suffix);
		if (w < 0)
			return;
		pos += (size_t)w;
	}
}

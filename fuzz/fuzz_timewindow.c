/* libFuzzer target for time_window_parse and time_window_contains. A
 * parsed window must hold its bounds, and its start minute must lie
 * inside it on a day it names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timewindow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct time_window w;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	if (time_window_parse(text, &w) == 0) {
		struct tm tm = {0};
		int day;

		if (w.days == 0 || w.days > 0x7f || w.start_min > 1439 || w.end_min > 1440 ||
		    w.start_min == w.end_min)
			abort();
		for (day = 0; day < 7 && !(w.days & (1u << day)); day++)
			;
		tm.tm_wday = (day + 1) % 7; /* bit 0 is Monday, tm_wday 0 is Sunday */
		tm.tm_hour = w.start_min / 60;
		tm.tm_min = w.start_min % 60;
		if (!time_window_contains(&w, &tm))
			abort();
	}
	free(text);
	return 0;
}

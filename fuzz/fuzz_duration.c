/* libFuzzer target for duration_parse and duration_format. A duration
 * that parses must format to text that parses to the same number of
 * seconds, and formatting into a short buffer must stay inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Formats into a heap buffer of exactly `size` bytes, so that
 * AddressSanitizer reports any write past it. */
static void check_format_into(uint64_t seconds, size_t size)
{
	char *buf = malloc(size ? size : 1);

	if (!buf)
		abort();
	duration_format(seconds, buf, size);
	if (size > 0 && !memchr(buf, '\0', size))
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char formatted[64];
	uint64_t seconds = 0, again = 0;
	int r;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	r = duration_parse(text, &seconds);
	free(text);
	if (r != 0 && r != -EINVAL && r != -ERANGE)
		abort();
	if (r < 0)
		return 0;

	if (seconds > MID_DURATION_MAX)
		abort();
	duration_format(seconds, formatted, sizeof(formatted));
	if (duration_parse(formatted, &again) != 0 || again != seconds)
		abort();
	check_format_into(seconds, size % 24);
	return 0;
}

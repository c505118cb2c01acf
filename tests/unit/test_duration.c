/* Unit tests of lib/duration.c: parsing and formatting of durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

static const struct {
	const char *text;
	uint64_t seconds;
} valid_durations[] = {
	{"30s", 30},
	{"15m", 15 * 60},
	{"8h", 8 * 3600},
	{"2d", 2 * 86400},
	{"1w", 7 * 86400},
	{"1h30m", 3600 + 30 * 60},
	{"90", 90},
	{"0", 0},
	{"0s", 0},
	{"1w2d3h4m5s", 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5},
	{"007m", 7 * 60},
	{"4294967295", UINT32_MAX},
	{"4294967295s", UINT32_MAX},
	{"71582788m15s", UINT32_MAX},
};

static const char *const invalid_durations[] = {
	"", "s", "10x", "1h30", "-5m", " 5m", "5m ", "1.5h", "+5m", "5M", "5mm", "h5", "1h 30m", "5\n",
};

static const char *const out_of_range_durations[] = {
	"4294967296", "99999999999d", "4294967296s", "71582789m", "7102w", "4294967295s1s",
	"184467440737095516160",
};

static void duration_parse_valid(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(valid_durations); i++) {
		uint64_t seconds = UINT64_MAX;

		print_message("# parsing \"%s\"\n", valid_durations[i].text);
		assert_int_equal(duration_parse(valid_durations[i].text, &seconds), 0);
		assert_int_equal(seconds, valid_durations[i].seconds);
	}
}

static void duration_parse_invalid(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(invalid_durations); i++) {
		uint64_t seconds = 12345;

		print_message("# parsing \"%s\"\n", invalid_durations[i]);
		assert_int_equal(duration_parse(invalid_durations[i], &seconds), -EINVAL);
		assert_int_equal(seconds, 12345);
	}
}

static void duration_parse_null(void **state)
{
	uint64_t seconds = 12345;

	assert_int_equal(duration_parse(NULL, &seconds), -EINVAL);
	assert_int_equal(seconds, 12345);
}

static void duration_parse_overflow(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(out_of_range_durations); i++) {
		uint64_t seconds = 12345;

		print_message("# parsing \"%s\"\n", out_of_range_durations[i]);
		assert_int_equal(duration_parse(out_of_range_durations[i], &seconds), -ERANGE);
		assert_int_equal(seconds, 12345);
	}
}

static const struct {
	uint64_t seconds;
	const char *text;
} formatted_durations[] = {
	{0, "0s"},
	{1, "1s"},
	{59, "59s"},
	{60, "1m"},
	{90, "1m30s"},
	{3600, "1h"},
	{5400, "1h30m"},
	{86400, "1d"},
	{93784, "1d2h3m4s"},
	{14 * 86400, "14d"},
	{UINT32_MAX, "49710d6h28m15s"},
};

static void duration_format_table(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(formatted_durations); i++) {
		char text[64];

		duration_format(formatted_durations[i].seconds, text, sizeof(text));
		assert_string_equal(text, formatted_durations[i].text);
	}
}

static void duration_format_round_trip(void **state)
{
	static const uint64_t samples[] = {0, 1, 61, 3599, 3601, 86399, 90061, 604800, 1000000,
					   UINT32_MAX - 1, UINT32_MAX};

	for (size_t i = 0; i < MID_ELEMENTSOF(samples); i++) {
		char text[64];
		uint64_t seconds = UINT64_MAX;

		duration_format(samples[i], text, sizeof(text));
		print_message("# round trip of %s\n", text);
		assert_int_equal(duration_parse(text, &seconds), 0);
		assert_int_equal(seconds, samples[i]);
	}
}

/* A buffer too small gets a NUL-terminated prefix and nothing past it. */
static void duration_format_small_buffer(void **state)
{
	char buf[16];

	for (size_t size = 1; size < 8; size++) {
		memset(buf, 'X', sizeof(buf));
		duration_format(93784, buf, size);
		assert_non_null(memchr(buf, '\0', size));
		assert_memory_equal(buf, "1d2h3m4s", strlen(buf));
		assert_int_equal(buf[size], 'X');
	}

	memset(buf, 'X', sizeof(buf));
	duration_format(93784, buf, 0);
	assert_int_equal(buf[0], 'X');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(duration_parse_valid),
		cmocka_unit_test(duration_parse_invalid),
		cmocka_unit_test(duration_parse_null),
		cmocka_unit_test(duration_parse_overflow),
		cmocka_unit_test(duration_format_table),
		cmocka_unit_test(duration_format_round_trip),
		cmocka_unit_test(duration_format_small_buffer),
	};

	return cmocka_run_group_tests_name("duration", tests, NULL, NULL);
}

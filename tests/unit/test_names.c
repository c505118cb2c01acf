/* Unit tests of lib/names.c: account names, lease ids and log escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "protocol.h"

static const char *const valid_names[] = {
	"deploy", "ci-1a2b", "svc_backup", "a.b", "A", "x", "a-", "a.", "1a", "_",
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef", /* MID_NAME_MAX bytes */
};

static const char *const invalid_names[] = {
	"", "/", "..", ".", ".x", "-x", "-", "a:b", "a\nb", "a b", " a", "a/b", "a@b", "a$",
	"\xff", "a\xff", "caf\xc3\xa9", "12345", "0",
};

static void name_valid(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(valid_names); i++) {
		print_message("# name \"%s\"\n", valid_names[i]);
		assert_true(name_is_valid(valid_names[i]));
	}
}

static void name_invalid(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(invalid_names); i++) {
		print_message("# name %zu\n", i);
		assert_false(name_is_valid(invalid_names[i]));
	}
	assert_false(name_is_valid(NULL));
}

static void name_length_limit(void **state)
{
	static const size_t lengths[] = {MID_NAME_MAX + 1, 256, 4096};
	char name[4097];

	memset(name, 'a', MID_NAME_MAX);
	name[MID_NAME_MAX] = '\0';
	assert_true(name_is_valid(name));

	for (size_t i = 0; i < MID_ELEMENTSOF(lengths); i++) {
		memset(name, 'a', lengths[i]);
		name[lengths[i]] = '\0';
		print_message("# name of %zu bytes\n", lengths[i]);
		assert_false(name_is_valid(name));
	}
}

static void name_control_bytes(void **state)
{
	for (unsigned c = 1; c < 0x20; c++) {
		char name[] = {'a', (char)c, 'b', '\0'};

		print_message("# byte 0x%02x\n", c);
		assert_false(name_is_valid(name));
	}
	assert_false(name_is_valid("a\x7f" "b"));
}

/* Every byte from 0x80 up is rejected, so no UTF-8 or other encoding
 * slips through. */
static void name_high_bytes(void **state)
{
	for (unsigned c = 0x80; c <= 0xff; c++) {
		char name[] = {'a', (char)c, '\0'};

		print_message("# byte 0x%02x\n", c);
		assert_false(name_is_valid(name));
	}
}

static void lease_id_cases(void **state)
{
	assert_true(lease_id_is_valid("0123456789abcdef"));
	assert_true(lease_id_is_valid("ffffffffffffffff"));
	assert_false(lease_id_is_valid("0123456789abcde"));
	assert_false(lease_id_is_valid("0123456789abcdef0"));
	assert_false(lease_id_is_valid("0123456789ABCDEF"));
	assert_false(lease_id_is_valid("0123456789abcdeg"));
	assert_false(lease_id_is_valid("0123456789abcde "));
	assert_false(lease_id_is_valid(""));
	assert_false(lease_id_is_valid(NULL));
}

static const struct {
	const char *text;
	const char *escaped;
} escapes[] = {
	{"plain text", "plain text"},
	{"", ""},
	{"a\nb", "a\\x0ab"},
	{"\x1b[31mred", "\\x1b[31mred"},
	{"say \"hi\"", "say \\x22hi\\x22"},
	{"back\\slash", "back\\x5cslash"},
	{"\xff", "\\xff"},
	{"\x7f", "\\x7f"},
	{"caf\xc3\xa9", "caf\\xc3\\xa9"},
	{"tab\there", "tab\\x09here"},
	{"'~ ", "'~ "},
};

static void escape_table(void **state)
{
	for (size_t i = 0; i < MID_ELEMENTSOF(escapes); i++) {
		char out[64];

		assert_ptr_equal(text_escape(escapes[i].text, out, sizeof(out)), out);
		assert_string_equal(out, escapes[i].escaped);
	}
}

static void escape_null_text(void **state)
{
	char out[8];

	memset(out, 'x', sizeof(out));
	text_escape(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

static void escape_cut_marked(void **state)
{
	char out[10];

	text_escape("abcdefghijklmnop", out, sizeof(out));
	assert_string_equal(out, "abcdef...");

	/* Nine characters and the NUL fit in ten bytes, so nothing is cut. */
	text_escape("abcdefghi", out, sizeof(out));
	assert_string_equal(out, "abcdefghi");

	text_escape("abcdefghij", out, sizeof(out));
	assert_string_equal(out, "abcdef...");
}

static void escape_cut_whole_escape(void **state)
{
	char out[8];

	/* "a\x0a" is five bytes, but only four fit before the "...". */
	text_escape("a\nbcdefghij", out, sizeof(out));
	assert_string_equal(out, "a...");

	text_escape("\xff\xff\xff", out, sizeof(out));
	assert_string_equal(out, "\\xff...");
}

/* Checks that the output of a cut holds only whole escapes: every
 * backslash is followed by "xNN". */
static void assert_whole_escapes(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\')
			continue;
		assert_true(i + 3 < len);
		assert_int_equal(s[i + 1], 'x');
		i += 3;
	}
}

/* For every buffer size, the output fits with its NUL, leaves the byte
 * after the buffer alone, is a prefix of the full escape made of whole
 * escapes, and ends with "..." when it was cut and there is room. */
static void escape_every_size(void **state)
{
	static const char *const texts[] = {
		"", "a", "abc", "\n", "a\nb", "\\\\\\", "\x01\x02\x03\x04", "deploy\x1b[0m", "\xff" "abc",
	};

	for (size_t t = 0; t < MID_ELEMENTSOF(texts); t++) {
		char full[128];
		size_t full_len;

		text_escape(texts[t], full, sizeof(full));
		full_len = strlen(full);

		for (size_t size = 0; size <= full_len + 2; size++) {
			char out[130];
			size_t len, kept_len;

			print_message("# text %zu, size %zu\n", t, size);
			memset(out, '#', sizeof(out));
			text_escape(texts[t], out, size);
			assert_int_equal(out[size], '#');
			if (size == 0)
				continue;

			assert_non_null(memchr(out, '\0', size));
			len = strlen(out);
			if (full_len < size) {
				assert_string_equal(out, full);
				continue;
			}
			kept_len = len;
			if (size > 4) {
				assert_true(len >= 3);
				assert_memory_equal(out + len - 3, "...", 3);
				kept_len = len - 3;
			}
			assert_memory_equal(out, full, kept_len);
			assert_whole_escapes(out, kept_len);
		}
	}
}

static void escape_small_sizes(void **state)
{
	static const char text[] = "a\"b";
	static const char *const expected[] = {
		NULL, "", "a", "a", "a", "a...", "a...", "a\\x22b",
	};

	for (size_t size = 1; size < MID_ELEMENTSOF(expected); size++) {
		char out[16];

		memset(out, '#', sizeof(out));
		text_escape(text, out, size);
		print_message("# size %zu\n", size);
		assert_string_equal(out, expected[size]);
		assert_int_equal(out[size], '#');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(name_valid),
		cmocka_unit_test(name_invalid),
		cmocka_unit_test(name_length_limit),
		cmocka_unit_test(name_control_bytes),
		cmocka_unit_test(name_high_bytes),
		cmocka_unit_test(lease_id_cases),
		cmocka_unit_test(escape_table),
		cmocka_unit_test(escape_null_text),
		cmocka_unit_test(escape_cut_marked),
		cmocka_unit_test(escape_cut_whole_escape),
		cmocka_unit_test(escape_every_size),
		cmocka_unit_test(escape_small_sizes),
	};

	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}

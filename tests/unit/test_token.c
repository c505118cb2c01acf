/* Unit tests of lib/token.c: credential tokens and lease ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "token.h"

#define LEASE_ID "0123456789abcdef"

static const uint8_t host_key[MID_HOST_KEY_BYTES] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
	0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
};

/* Offsets of the parts of "mid1_<lease>_<secret>_<check>". */
#define PREFIX_LEN (sizeof(MID_TOKEN_PREFIX) - 1)
#define LEASE_POS PREFIX_LEN
#define SECRET_POS (LEASE_POS + MID_LEASE_ID_LEN + 1)
#define CHECK_POS (SECRET_POS + 2 * MID_TOKEN_SECRET_BYTES + 1)

static int setup_sodium(void **state)
{
	return sodium_init() < 0 ? -1 : 0;
}

static void make_token(char token[MID_TOKEN_LEN + 1], uint8_t hash[MID_TOKEN_HASH_BYTES])
{
	assert_int_equal(token_new(LEASE_ID, host_key, token, hash), 0);
}

/* Replaces the hex digit at pos with a different lowercase hex digit. */
static void change_hex_digit(char *token, size_t pos)
{
	token[pos] = token[pos] == '0' ? '1' : '0';
}

static void token_round_trip(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);

	assert_int_equal(token_parse(token, strlen(token), host_key, lease_id, parsed_hash), 0);
	assert_string_equal(lease_id, LEASE_ID);
	assert_memory_equal(parsed_hash, hash, MID_TOKEN_HASH_BYTES);
}

static void token_length_and_prefix(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES];

	make_token(token, hash);

	assert_int_equal(MID_TOKEN_LEN, 5 + 16 + 1 + 64 + 1 + 8);
	assert_int_equal(strlen(token), MID_TOKEN_LEN);
	assert_memory_equal(token, "mid1_", PREFIX_LEN);
	assert_memory_equal(token + LEASE_POS, LEASE_ID, MID_LEASE_ID_LEN);
	assert_int_equal(token[SECRET_POS - 1], '_');
	assert_int_equal(token[CHECK_POS - 1], '_');
}

static void token_secrets_differ(void **state)
{
	char first[MID_TOKEN_LEN + 1], second[MID_TOKEN_LEN + 1];
	uint8_t first_hash[MID_TOKEN_HASH_BYTES], second_hash[MID_TOKEN_HASH_BYTES];

	make_token(first, first_hash);
	make_token(second, second_hash);

	assert_string_not_equal(first, second);
	assert_memory_not_equal(first_hash, second_hash, MID_TOKEN_HASH_BYTES);
}

static void token_new_invalid_lease(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES];

	assert_int_equal(token_new("0123456789ABCDEF", host_key, token, hash), -EINVAL);
	assert_int_equal(token_new("0123", host_key, token, hash), -EINVAL);
	assert_int_equal(token_new("", host_key, token, hash), -EINVAL);
}

static void token_changed_secret_digit(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);
	change_hex_digit(token, SECRET_POS + 10);

	assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
			 -EBADMSG);
}

static void token_changed_lease_digit(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);
	change_hex_digit(token, LEASE_POS + 3);

	assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
			 -EBADMSG);
}

static void token_changed_check_digit(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);
	change_hex_digit(token, MID_TOKEN_LEN - 1);

	assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
			 -EBADMSG);
}

static void token_wrong_length(void **state)
{
	char token[MID_TOKEN_LEN + 2];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);

	assert_int_equal(token_parse(token, MID_TOKEN_LEN - 1, host_key, lease_id, parsed_hash),
			 -EINVAL);
	assert_int_equal(token_parse(token, 0, host_key, lease_id, parsed_hash), -EINVAL);

	token[MID_TOKEN_LEN] = '0';
	token[MID_TOKEN_LEN + 1] = '\0';
	assert_int_equal(token_parse(token, MID_TOKEN_LEN + 1, host_key, lease_id, parsed_hash),
			 -EINVAL);
}

static void token_uppercase_hex(void **state)
{
	static const size_t positions[] = {LEASE_POS, SECRET_POS + 5, CHECK_POS + 2};
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	for (size_t i = 0; i < MID_ELEMENTSOF(positions); i++) {
		char token[MID_TOKEN_LEN + 1];

		make_token(token, hash);
		token[positions[i]] = 'A';
		assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
				 -EINVAL);
	}
}

static void token_missing_separators(void **state)
{
	static const size_t positions[] = {PREFIX_LEN - 1, SECRET_POS - 1, CHECK_POS - 1};
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	for (size_t i = 0; i < MID_ELEMENTSOF(positions); i++) {
		char token[MID_TOKEN_LEN + 1];

		make_token(token, hash);
		token[positions[i]] = '0';
		assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
				 -EINVAL);
	}
}

static void token_wrong_prefix(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);
	memcpy(token, "mid2_", PREFIX_LEN);
	assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
			 -EINVAL);

	make_token(token, hash);
	memcpy(token, "MID1_", PREFIX_LEN);
	assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
			 -EINVAL);
}

static void token_nul_inside(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], parsed_hash[MID_TOKEN_HASH_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);
	token[SECRET_POS + 1] = '\0';
	assert_int_equal(token_parse(token, MID_TOKEN_LEN, host_key, lease_id, parsed_hash),
			 -EINVAL);
}

static void token_other_host_key(void **state)
{
	char token[MID_TOKEN_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], other_hash[MID_TOKEN_HASH_BYTES];
	uint8_t other_key[MID_HOST_KEY_BYTES];
	char lease_id[MID_LEASE_ID_LEN + 1];

	make_token(token, hash);
	memcpy(other_key, host_key, sizeof(other_key));
	other_key[0] ^= 0x80;

	assert_int_equal(token_parse(token, MID_TOKEN_LEN, other_key, lease_id, other_hash), 0);
	assert_string_equal(lease_id, LEASE_ID);
	assert_memory_not_equal(other_hash, hash, MID_TOKEN_HASH_BYTES);
}

static void token_hash_compare_cases(void **state)
{
	uint8_t a[MID_TOKEN_HASH_BYTES], b[MID_TOKEN_HASH_BYTES];

	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_int_equal(token_hash_compare(a, b), 0);

	b[MID_TOKEN_HASH_BYTES - 1] ^= 1;
	assert_int_not_equal(token_hash_compare(a, b), 0);

	memcpy(b, a, sizeof(b));
	b[0] ^= 1;
	assert_int_not_equal(token_hash_compare(a, b), 0);
}

static void lease_id_format(void **state)
{
	char first[MID_LEASE_ID_LEN + 1], second[MID_LEASE_ID_LEN + 1];

	token_new_lease_id(first);
	token_new_lease_id(second);

	assert_int_equal(strlen(first), MID_LEASE_ID_LEN);
	assert_int_equal(strspn(first, "0123456789abcdef"), MID_LEASE_ID_LEN);
	assert_true(lease_id_is_valid(first));
	assert_true(lease_id_is_valid(second));
	assert_string_not_equal(first, second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_round_trip),
		cmocka_unit_test(token_length_and_prefix),
		cmocka_unit_test(token_secrets_differ),
		cmocka_unit_test(token_new_invalid_lease),
		cmocka_unit_test(token_changed_secret_digit),
		cmocka_unit_test(token_changed_lease_digit),
		cmocka_unit_test(token_changed_check_digit),
		cmocka_unit_test(token_wrong_length),
		cmocka_unit_test(token_uppercase_hex),
		cmocka_unit_test(token_missing_separators),
		cmocka_unit_test(token_wrong_prefix),
		cmocka_unit_test(token_nul_inside),
		cmocka_unit_test(token_other_host_key),
		cmocka_unit_test(token_hash_compare_cases),
		cmocka_unit_test(lease_id_format),
	};

	return cmocka_run_group_tests_name("token", tests, setup_sodium, NULL);
}

/* Making and parsing credential tokens with libsodium. */
#include "token.h"

#include <sodium.h>
#include <string.h>

#define PREFIX_LEN (sizeof(MID_TOKEN_PREFIX) - 1)
#define SECRET_POS (PREFIX_LEN + MID_LEASE_ID_LEN + 1)
#define CHECK_POS (SECRET_POS + 2 * MID_TOKEN_SECRET_BYTES + 1)

void token_new_lease_id(char ret[MID_LEASE_ID_LEN + 1])
{
	uint8_t raw[MID_LEASE_ID_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(ret, MID_LEASE_ID_LEN + 1, raw, sizeof(raw));
}

static void token_checksum(const char *body, size_t len, char out[2 * MID_TOKEN_CHECK_BYTES + 1])
{
	uint8_t digest[MID_TOKEN_CHECK_BYTES];

	crypto_generichash(digest, sizeof(digest), (const uint8_t *)body, len, NULL, 0);
	sodium_bin2hex(out, 2 * MID_TOKEN_CHECK_BYTES + 1, digest, sizeof(digest));
}

/* The stored hash binds the secret to its lease id, so a secret moved to
 * another lease does not verify. */
static int token_hash(const char *lease_id, const uint8_t secret[MID_TOKEN_SECRET_BYTES],
		      const uint8_t key[MID_HOST_KEY_BYTES], uint8_t ret[MID_TOKEN_HASH_BYTES])
{
	crypto_generichash_state st;
	int r = 0;

	if (crypto_generichash_init(&st, key, MID_HOST_KEY_BYTES, MID_TOKEN_HASH_BYTES) != 0 ||
	    crypto_generichash_update(&st, (const uint8_t *)lease_id, MID_LEASE_ID_LEN) != 0 ||
	    crypto_generichash_update(&st, secret, MID_TOKEN_SECRET_BYTES) != 0 ||
	    crypto_generichash_final(&st, ret, MID_TOKEN_HASH_BYTES) != 0)
		r = -EIO;
	sodium_memzero(&st, sizeof(st));
	return r;
}

int token_new(const char *lease_id, const uint8_t key[MID_HOST_KEY_BYTES],
	      char ret_token[MID_TOKEN_LEN + 1], uint8_t ret_hash[MID_TOKEN_HASH_BYTES])
{
	uint8_t secret[MID_TOKEN_SECRET_BYTES];
	char token[MID_TOKEN_LEN + 1];
	int r;

	if (!lease_id_is_valid(lease_id))
		return -EINVAL;

	randombytes_buf(secret, sizeof(secret));
	memcpy(token, MID_TOKEN_PREFIX, PREFIX_LEN);
	memcpy(token + PREFIX_LEN, lease_id, MID_LEASE_ID_LEN);
	token[SECRET_POS - 1] = '_';
	sodium_bin2hex(token + SECRET_POS, 2 * MID_TOKEN_SECRET_BYTES + 1, secret, sizeof(secret));
	token[CHECK_POS - 1] = '_';
	token_checksum(token, CHECK_POS - 1, token + CHECK_POS);

	r = token_hash(lease_id, secret, key, ret_hash);
	if (r == 0)
		memcpy(ret_token, token, sizeof(token));
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(token, sizeof(token));
	return r;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int token_parse(const char *token, size_t len, const uint8_t key[MID_HOST_KEY_BYTES],
		char ret_lease_id[MID_LEASE_ID_LEN + 1], uint8_t ret_hash[MID_TOKEN_HASH_BYTES])
{
	uint8_t secret[MID_TOKEN_SECRET_BYTES];
	char check[2 * MID_TOKEN_CHECK_BYTES + 1];
	char lease_id[MID_LEASE_ID_LEN + 1];
	int r;

	if (len != MID_TOKEN_LEN || memcmp(token, MID_TOKEN_PREFIX, PREFIX_LEN) != 0 ||
	    token[SECRET_POS - 1] != '_' || token[CHECK_POS - 1] != '_' ||
	    !is_lower_hex(token + PREFIX_LEN, MID_LEASE_ID_LEN) ||
	    !is_lower_hex(token + SECRET_POS, 2 * MID_TOKEN_SECRET_BYTES) ||
	    !is_lower_hex(token + CHECK_POS, 2 * MID_TOKEN_CHECK_BYTES))
		return -EINVAL;

	token_checksum(token, CHECK_POS - 1, check);
	if (sodium_memcmp(check, token + CHECK_POS, 2 * MID_TOKEN_CHECK_BYTES) != 0)
		return -EBADMSG;

	memcpy(lease_id, token + PREFIX_LEN, MID_LEASE_ID_LEN);
	lease_id[MID_LEASE_ID_LEN] = '\0';
	if (sodium_hex2bin(secret, sizeof(secret), token + SECRET_POS, 2 * MID_TOKEN_SECRET_BYTES,
			   NULL, NULL, NULL) != 0)
		return -EINVAL;

	r = token_hash(lease_id, secret, key, ret_hash);
	sodium_memzero(secret, sizeof(secret));
	if (r < 0)
		return r;
	memcpy(ret_lease_id, lease_id, sizeof(lease_id));
	return 0;
}

int token_hash_compare(const uint8_t a[MID_TOKEN_HASH_BYTES], const uint8_t b[MID_TOKEN_HASH_BYTES])
{
	return sodium_memcmp(a, b, MID_TOKEN_HASH_BYTES) == 0 ? 0 : -1;
}

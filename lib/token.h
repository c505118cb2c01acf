/* Credential tokens: mid1_<lease>_<secret>_<check>, where <lease> is the
 * 16-hex-digit lease id, <secret> 64 hex digits of random bytes and
 * <check> 8 hex digits of BLAKE2b over everything before it. The prefix
 * and checksum let secret scanners find leaked tokens and let the agent
 * reject a mistyped one before any lookup. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "names.h"

#define MID_TOKEN_PREFIX "mid1_"
#define MID_TOKEN_SECRET_BYTES 32
#define MID_TOKEN_CHECK_BYTES 4
#define MID_TOKEN_LEN                                                                              \
	(sizeof(MID_TOKEN_PREFIX) - 1 + MID_LEASE_ID_LEN + 1 + 2 * MID_TOKEN_SECRET_BYTES + 1 +   \
	 2 * MID_TOKEN_CHECK_BYTES)
#define MID_HOST_KEY_BYTES 32
#define MID_TOKEN_HASH_BYTES 32

/* Makes a new random lease id (MID_LEASE_ID_LEN + 1 bytes with NUL). */
void token_new_lease_id(char ret[MID_LEASE_ID_LEN + 1]);
/* Makes a new secret and writes the token (MID_TOKEN_LEN + 1 bytes) and
 * the secret's keyed hash, the only form the agent stores. */
MID_MUST_CHECK int token_new(const char *lease_id, const uint8_t key[MID_HOST_KEY_BYTES],
			     char ret_token[MID_TOKEN_LEN + 1],
			     uint8_t ret_hash[MID_TOKEN_HASH_BYTES]);
/* Parses a token of `len` bytes. Returns 0, -EINVAL when it is not a token
 * (wrong length, prefix or characters) or -EBADMSG when its checksum does
 * not match. Writes the lease id and the secret's keyed hash. */
MID_MUST_CHECK int token_parse(const char *token, size_t len, const uint8_t key[MID_HOST_KEY_BYTES],
			       char ret_lease_id[MID_LEASE_ID_LEN + 1],
			       uint8_t ret_hash[MID_TOKEN_HASH_BYTES]);
/* Compares two keyed hashes in constant time: 0 when equal. */
MID_MUST_CHECK int token_hash_compare(const uint8_t a[MID_TOKEN_HASH_BYTES],
				      const uint8_t b[MID_TOKEN_HASH_BYTES]);

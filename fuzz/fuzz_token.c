/* libFuzzer target for token_parse with a fixed host key. A token that
 * parses must name a valid lease id and must parse to the same hash again. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t host_key[MID_HOST_KEY_BYTES] = {
	0x6d, 0x69, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65,
	0x79, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
	0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sodium_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char lease_id[MID_LEASE_ID_LEN + 1], again_lease_id[MID_LEASE_ID_LEN + 1];
	uint8_t hash[MID_TOKEN_HASH_BYTES], again_hash[MID_TOKEN_HASH_BYTES];
	int r;

	r = token_parse((const char *)data, size, host_key, lease_id, hash);
	if (r != 0 && r != -EINVAL && r != -EBADMSG)
		abort();
	if (r < 0)
		return 0;

	if (!lease_id_is_valid(lease_id))
		abort();
	if (token_parse((const char *)data, size, host_key, again_lease_id, again_hash) != 0 ||
	    strcmp(again_lease_id, lease_id) != 0 || token_hash_compare(again_hash, hash) != 0)
		abort();
	return 0;
}

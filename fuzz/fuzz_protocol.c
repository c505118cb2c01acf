/* libFuzzer target for the wire protocol decoders. Every input is decoded
 * as a request and as a response. A frame that decodes must encode back to
 * exactly the same bytes, because the format has one encoding per value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *data, size_t size)
{
	static struct mid_request req;
	static uint8_t frame[MID_FRAME_MAX];
	ssize_t n;

	if (mid_request_decode(data, size, &req) < 0)
		return;
	n = mid_request_encode(&req, frame, sizeof(frame));
	if (n < 0 || (size_t)n != size || memcmp(frame, data, size) != 0)
		abort();
	mid_request_wipe(&req);
}

static void check_response(const uint8_t *data, size_t size)
{
	/* Static because a response with a full page of leases is large. */
	static struct mid_response resp;
	static uint8_t frame[MID_FRAME_MAX];
	ssize_t n;

	if (mid_response_decode(data, size, &resp) < 0)
		return;
	n = mid_response_encode(&resp, frame, sizeof(frame));
	if (n < 0 || (size_t)n != size || memcmp(frame, data, size) != 0)
		abort();
	mid_response_wipe(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	check_response(data, size);
	return 0;
}

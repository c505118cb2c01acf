/* libFuzzer target for netaddr_parse and netaddr_match: the input is
 * split at its first newline into a network and a PAM_RHOST text. A
 * parsed network must match its own address, and "local" only an empty
 * rhost. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *rhost;
	struct netaddr net;
	char own[64];

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	rhost = strchr(text, '\n');
	if (rhost)
		*rhost++ = '\0';
	else
		rhost = "";

	if (netaddr_parse(text, &net) == 0) {
		(void)netaddr_match(&net, rhost);
		if (net.local) {
			if (!netaddr_match(&net, "") || netaddr_match(&net, "127.0.0.1"))
				abort();
		} else {
			if (!inet_ntop(net.family, net.addr, own, sizeof(own)))
				abort();
			if (!netaddr_match(&net, own))
				abort();
		}
	}
	free(text);
	return 0;
}

/* Parsing and matching of CIDR networks. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TEXT_MAX 64

static int parse_prefix(const char *text, unsigned max, uint8_t *ret)
{
	unsigned long v;
	char *end;

	if (!*text || *text == '+' || *text == '-' || *text == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

static bool host_bits_zero(const uint8_t *addr, unsigned bytes, unsigned prefix)
{
	for (unsigned bit = prefix; bit < bytes * 8; bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

int netaddr_parse(const char *text, struct netaddr *ret)
{
	char buf[TEXT_MAX];
	struct netaddr n = {0};
	char *slash;
	unsigned max;

	if (!text || strlen(text) >= sizeof(buf))
		return -EINVAL;
	if (strcmp(text, "local") == 0) {
		n.local = true;
		*ret = n;
		return 0;
	}
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';

	if (inet_pton(AF_INET, buf, n.addr) == 1) {
		n.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, n.addr) == 1) {
		n.family = AF_INET6;
		max = 128;
	} else
		return -EINVAL;

	n.prefix = (uint8_t)max;
	if (slash && parse_prefix(slash + 1, max, &n.prefix) < 0)
		return -EINVAL;
	if (!host_bits_zero(n.addr, max / 8, n.prefix))
		return -EINVAL;
	*ret = n;
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool netaddr_match(const struct netaddr *net, const char *rhost)
{
	static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t addr[16];

	if (!rhost || !*rhost)
		return net->local;
	if (net->local || strlen(rhost) >= TEXT_MAX)
		return false;

	if (net->family == AF_INET) {
		if (inet_pton(AF_INET, rhost, addr) == 1)
			return prefix_equal(addr, net->addr, net->prefix);
		if (inet_pton(AF_INET6, rhost, addr) == 1 && memcmp(addr, v4_mapped, 12) == 0)
			return prefix_equal(addr + 12, net->addr, net->prefix);
		return false;
	}
	if (inet_pton(AF_INET6, rhost, addr) == 1)
		return prefix_equal(addr, net->addr, net->prefix);
	return false;
}

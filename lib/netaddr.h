/* IPv4 and IPv6 networks in CIDR notation, and "local", for the sources a
 * policy allows. Addresses are parsed with inet_pton only: a host name is
 * never resolved. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

struct netaddr {
	bool local;     /* "local": a login with no remote host (PAM_RHOST unset or empty) */
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t prefix; /* bits */
	uint8_t addr[16];
};

/* Parses "local", "10.0.0.0/8", "192.0.2.7" (a /32), "2001:db8::/32" or
 * "::1". Host bits beyond the prefix must be zero. Returns 0 or -EINVAL. */
MID_MUST_CHECK int netaddr_parse(const char *text, struct netaddr *ret);
/* True when rhost (the PAM_RHOST text) is inside net. An rhost that is
 * not an address (a host name) matches no network and not "local". An
 * IPv4-mapped IPv6 address matches IPv4 networks. */
bool netaddr_match(const struct netaddr *net, const char *rhost);

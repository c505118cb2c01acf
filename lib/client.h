/* One request to mid-agentd over its SOCK_SEQPACKET socket, bounded by a
 * deadline; used by pam_mid and midctl. */
#pragma once

#include "macro.h"
#include "protocol.h"

/* Sends req and decodes the reply into ret. Returns 0 when a reply
 * arrived (whatever its status), -ETIMEDOUT when timeout_ms passed,
 * -ENOENT or -ECONNREFUSED when no agent listens, -EBADMSG for a reply
 * that does not decode, or another -errno. */
MID_MUST_CHECK int mid_client_call(const char *socket_path, int timeout_ms,
				   const struct mid_request *req, struct mid_response *ret);

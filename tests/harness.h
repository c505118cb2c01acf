/* Test harness: runs a real mid-agentd on a private socket, state dir and
 * runtime dir under a temporary directory, and talks to it. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"
#include "token.h"

struct harness {
	char dir[256];
	char socket_path[300];
	char cache_path[300];
	char config_path[300];
	pid_t pid;
};

/* Writes config_text as the policy and starts the agent in dir (made
 * with mkdtemp when NULL); returns 0 once it answers a status request,
 * or -errno. */
int harness_start(struct harness *h, const char *dir, const char *config_text);
/* Stops the agent (SIGTERM, then waits) without removing the directory. */
int harness_stop_agent(struct harness *h);
/* Restarts a stopped agent on the same state. */
int harness_restart_agent(struct harness *h);
/* Stops the agent and removes the directory. */
void harness_stop(struct harness *h);

/* Issues a credential for account (or class when class_name is set).
 * Returns the reply's status (enum mid_status) or -errno. */
int harness_issue(struct harness *h, const char *account, const char *class_name, uint32_t ttl,
		  char credential[MID_CREDENTIAL_MAX + 1], struct mid_lease_info *ret_lease);
int harness_revoke(struct harness *h, const char *lease);
/* Any request; returns the reply's status or -errno. */
int harness_call(struct harness *h, const struct mid_request *req, struct mid_response *resp);

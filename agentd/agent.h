/* State of a running mid-agentd, shared by its event handlers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "policy.h"
#include "protocol.h"
#include "store.h"

struct connection;

struct agent {
	sd_event *event;
	struct policy *policy;
	struct store *store;
	uint8_t *host_key; /* sodium_malloc'd, MID_HOST_KEY_BYTES */

	char *config_path;
	char *state_dir;
	char *runtime_dir;
	char *socket_path;
	char *cache_path;

	int listen_fd;
	bool socket_bound; /* bound by the agent, so removed at exit */
	sd_event_source *listen_source;
	sd_event_source *expiry_timer;

	uint64_t cache_generation;
	int64_t started_at;
	struct connection *connections;
	unsigned n_connections;
};

/* Peer of one connection, from SO_PEERCRED and SO_PEERGROUPS. */
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int n_groups;
};

int64_t now_realtime(void);

/* server.c */
MID_MUST_CHECK int server_listen(struct agent *a);
void server_stop(struct agent *a);

/* requests.c */
void request_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		    struct mid_response *resp);

/* publish.c */
/* Rewrites the NSS cache from the live leases and the policy. */
int cache_publish(struct agent *a);
/* Expires due leases and arms the timer for the next expiry. */
int expiry_schedule(struct agent *a);

/* peer.c */
bool peer_in_principals(const struct peer *peer, const struct principals *p);

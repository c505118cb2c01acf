/* The agent's socket: taken from systemd or bound with --socket, one
 * request per SOCK_SEQPACKET message, one reply per request. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "agent.h"
#include "log.h"

/* Bounds that keep one peer from starving the others: every connection
 * costs a descriptor and a few hundred bytes, so the totals bound memory. */
#define MAX_CONNECTIONS 4096
#define MAX_CONNECTIONS_PER_UID 64 /* for peers other than root */
#define IDLE_TIMEOUT_USEC (5 * 1000000ULL)
/* Requests per second a non-root UID may make, with bursts up to
 * RATE_BURST; root, which runs PAM for sshd, su and login, is not limited. */
#define RATE_PER_SEC 200
#define RATE_BURST 400
#define RATE_BUCKETS 64
/* Requests applied under one fsync at most; the rest wait for the next
 * batch. Each holds a reply of about 100 KiB while it waits. */
#define BATCH_MAX 64

struct connection {
	struct connection *prev, *next;
	struct agent *agent;
	int fd;
	sd_event_source *source;
	sd_event_source *idle_timer;
	struct peer peer;
	/* A decoded request waiting for the next batch; the connection reads
	 * nothing more until its reply is sent. */
	struct mid_request *queued;
	struct connection *queue_next;
};

/* Group commit: requests that arrive together are handled in one batch,
 * after every readable connection was read, and replied to only after
 * store_batch_end has made their commits durable with one fsync. */
static struct connection *batch_head;
static struct connection **batch_tail = &batch_head;
static sd_event_source *batch_source;
/* Syncs light commits (audit records of verifications) within a second. */
static sd_event_source *sync_timer;
#define SYNC_DELAY_USEC 1000000ULL

struct rate_bucket {
	uid_t uid;
	bool used;
	double tokens;
	uint64_t last_usec;
};

static struct rate_bucket rate_buckets[RATE_BUCKETS];

static uint64_t now_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Takes one token from uid's bucket; false when it is empty. The table is
 * small and fixed: the least recently used bucket makes room. */
static bool rate_allow(uid_t uid)
{
	uint64_t now = now_monotonic_usec();
	struct rate_bucket *b = NULL, *oldest = &rate_buckets[0];

	if (uid == 0)
		return true;
	for (size_t i = 0; i < RATE_BUCKETS; i++) {
		if (rate_buckets[i].used && rate_buckets[i].uid == uid) {
			b = &rate_buckets[i];
			break;
		}
		if (!rate_buckets[i].used || rate_buckets[i].last_usec < oldest->last_usec)
			oldest = &rate_buckets[i];
	}
	if (!b) {
		b = oldest;
		*b = (struct rate_bucket){.uid = uid, .used = true, .tokens = RATE_BURST,
					  .last_usec = now};
	}

	b->tokens += (double)(now - b->last_usec) * RATE_PER_SEC / 1e6;
	if (b->tokens > RATE_BURST)
		b->tokens = RATE_BURST;
	b->last_usec = now;
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

static void connection_free(struct connection *c)
{
	if (!c)
		return;
	if (c->queued) {
		for (struct connection **p = &batch_head; *p; p = &(*p)->queue_next)
			if (*p == c) {
				*p = c->queue_next;
				break;
			}
		batch_tail = &batch_head;
		while (*batch_tail)
			batch_tail = &(*batch_tail)->queue_next;
		mid_request_wipe(c->queued);
		free(c->queued);
	}
	sd_event_source_disable_unref(c->source);
	sd_event_source_disable_unref(c->idle_timer);
	if (c->fd >= 0)
		close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		c->agent->connections = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->agent->n_connections--;
	free(c->peer.groups);
	free(c);
}

static int peer_read(int fd, struct peer *ret)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[256];
	socklen_t glen = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	ret->pid = cred.pid;
	ret->uid = cred.uid;
	ret->gid = cred.gid;
	ret->groups = NULL;
	ret->n_groups = 0;

	/* The peer's own supplementary groups, as its process holds them now. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0 && glen > 0) {
		ret->groups = malloc(glen);
		if (!ret->groups)
			return -ENOMEM;
		memcpy(ret->groups, groups, glen);
		ret->n_groups = (int)(glen / sizeof(gid_t));
	}
	return 0;
}

static int connection_reply(struct connection *c, const struct mid_response *resp)
{
	uint8_t buf[MID_FRAME_MAX];
	ssize_t n = mid_response_encode(resp, buf, sizeof(buf)), sent;
	int r = 0;

	if (n < 0) {
		log_error("Failed to encode a reply: %s", strerror((int)-n));
		return (int)n;
	}
	sent = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent < 0)
		r = -errno;
	else if (sent != n)
		r = -EIO;
	explicit_bzero(buf, (size_t)n);
	return r;
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct connection *c = userdata;
	struct mid_request req;
	uint8_t buf[MID_FRAME_MAX], version, type;
	ssize_t n;
	int r;

	if (revents & (EPOLLHUP | EPOLLERR) && !(revents & EPOLLIN)) {
		connection_free(c);
		return 0;
	}
	/* The source is edge-triggered and stays on while a request is
	 * queued, which saves two epoll_ctl calls and a readiness check a
	 * request. The next request is read once the reply is out. */
	if (c->queued)
		return 0;

	n = recv(fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		connection_free(c);
		return 0;
	}
	if ((size_t)n > sizeof(buf)) {
		log_debug("Closing connection of UID %u: frame of %zd bytes is over the limit",
			  (unsigned)c->peer.uid, n);
		connection_free(c);
		return 0;
	}

	version = buf[0];
	type = n > 1 ? buf[1] : 0;
	r = mid_request_decode(buf, (size_t)n, &req);
	explicit_bzero(buf, (size_t)n);
	if (r == -EPROTO) {
		struct mid_response v = {.type = type, .status = MID_ERR_VERSION};

		snprintf(v.message, sizeof(v.message), "protocol version %u is not supported; use %u",
			 (unsigned)version, MID_PROTOCOL_VERSION);
		(void)connection_reply(c, &v);
		connection_free(c);
		return 0;
	}
	if (r < 0) {
		/* A malformed frame closes the connection: the peer is not
		 * speaking this protocol. */
		log_debug("Closing connection of UID %u: malformed request: %s",
			  (unsigned)c->peer.uid, strerror(-r));
		connection_free(c);
		return 0;
	}

	if (!rate_allow(c->peer.uid)) {
		struct mid_response *resp = calloc(1, sizeof(*resp));

		mid_request_wipe(&req);
		if (!resp) {
			connection_free(c);
			return 0;
		}
		resp->type = req.type;
		resp->status = MID_ERR_LIMIT;
		snprintf(resp->message, sizeof(resp->message),
			 "too many requests from UID %u; retry in a second", (unsigned)c->peer.uid);
		r = connection_reply(c, resp);
		free(resp);
		if (r < 0)
			connection_free(c);
		return 0;
	}

	c->queued = malloc(sizeof(*c->queued));
	if (!c->queued) {
		mid_request_wipe(&req);
		connection_free(c);
		return 0;
	}
	*c->queued = req;
	mid_request_wipe(&req);
	c->queue_next = NULL;
	*batch_tail = c;
	batch_tail = &c->queue_next;
	(void)sd_event_source_set_enabled(batch_source, SD_EVENT_ONESHOT);
	return 0;
}

/* Responses are large (a page of each listing), so the batch keeps one per
 * slot for the life of the agent and clears only the fields before the
 * pages: a handler fills a page's entries up to count, and only those are
 * sent. */
static struct mid_response *response_slots[BATCH_MAX];

static struct mid_response *response_slot(size_t i)
{
	if (!response_slots[i])
		response_slots[i] = malloc(sizeof(struct mid_response));
	if (response_slots[i])
		memset(response_slots[i], 0, MID_RESPONSE_HEAD_SIZE);
	return response_slots[i];
}

/* Replies to one handled request and lets its connection read again. */
static void batch_reply(struct connection *c, struct mid_response *resp)
{
	int r = connection_reply(c, resp);

	mid_response_wipe(resp);
	if (r < 0) {
		connection_free(c);
		return;
	}
	(void)sd_event_source_set_time_relative(c->idle_timer, IDLE_TIMEOUT_USEC);
	/* An edge that came while the request was queued, or two requests
	 * under one edge, left a request unread. */
	(void)on_connection_io(c->source, c->fd, EPOLLIN, c);
}

static int on_sync_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent *a = userdata;
	int r = store_sync(a->store);

	if (r < 0)
		log_error("Failed to sync verification records to disk: %s", strerror(-r));
	return 0;
}

/* Runs at idle priority, so every connection that was readable has been
 * read and queued first. A request that committed is answered only once
 * the batch's fsync succeeded; when it failed, such a request gets an
 * error in place of its reply (an issued credential is never sent). */
static int on_batch(sd_event_source *s, void *userdata)
{
	struct agent *a = userdata;
	struct connection *batch[BATCH_MAX];
	struct mid_response *resps[BATCH_MAX] = {0};
	bool wrote[BATCH_MAX] = {0};
	size_t n = 0;
	bool batching;
	int r = 0;

	while (batch_head && n < BATCH_MAX) {
		batch[n++] = batch_head;
		batch_head = batch_head->queue_next;
	}
	if (!batch_head)
		batch_tail = &batch_head;
	else
		(void)sd_event_source_set_enabled(batch_source, SD_EVENT_ONESHOT);

	log_hold();
	batching = store_batch_begin(a->store) == 0;
	for (size_t i = 0; i < n; i++) {
		struct connection *c = batch[i];
		uint64_t commits = store_commit_count(a->store);

		resps[i] = response_slot(i);
		if (resps[i]) {
			resps[i]->type = c->queued->type;
			request_handle(a, &c->peer, c->queued, resps[i]);
			wrote[i] = store_commit_count(a->store) != commits;
		}
		mid_request_wipe(c->queued);
		free(c->queued);
		c->queued = NULL;
	}
	if (batching)
		r = store_batch_end(a->store);
	if (store_sync_due(a->store) && sync_timer) {
		int enabled = SD_EVENT_OFF;

		/* An armed timer keeps its deadline, so records wait at most a
		 * second however many batches follow. */
		(void)sd_event_source_get_enabled(sync_timer, &enabled);
		if (enabled == SD_EVENT_OFF) {
			(void)sd_event_source_set_time_relative(sync_timer, SYNC_DELAY_USEC);
			(void)sd_event_source_set_enabled(sync_timer, SD_EVENT_ONESHOT);
		}
	}

	/* The log lines go out before the replies, so a peer that reads the
	 * log after its reply finds them there. */
	log_release();
	for (size_t i = 0; i < n; i++) {
		if (!resps[i]) {
			connection_free(batch[i]);
			continue;
		}
		if (r < 0 && wrote[i]) {
			uint8_t type = resps[i]->type;

			mid_response_wipe(resps[i]);
			memset(resps[i], 0, MID_RESPONSE_HEAD_SIZE);
			resps[i]->type = type;
			if (r == -ENOSPC)
				reply(resps[i], MID_ERR_NO_SPACE,
				      "the state database is out of space and the change may not "
				      "be on disk; free space and retry");
			else
				reply(resps[i], MID_ERR_INTERNAL,
				      "the state database could not be synced to disk (%s); the "
				      "change may not survive a crash, so retry",
				      strerror(-r));
		}
		batch_reply(batch[i], resps[i]);
	}
	return 0;
}

/* A connection that sends nothing for a while is closed, so idle peers
 * cannot hold descriptors forever. */
static int on_idle_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct connection *c = userdata;

	log_debug("Closing idle connection of UID %u", (unsigned)c->peer.uid);
	connection_free(c);
	return 0;
}

static unsigned connections_of_uid(const struct agent *a, uid_t uid)
{
	unsigned n = 0;

	for (const struct connection *c = a->connections; c; c = c->next)
		n += c->peer.uid == uid;
	return n;
}

static int on_listen_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;
	struct connection *c;
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warning("Failed to accept a connection: %s", strerror(errno));
		return 0;
	}
	if (a->n_connections >= MAX_CONNECTIONS) {
		log_warning("Rejecting a connection: %u connections are open", a->n_connections);
		close(cfd);
		return 0;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->agent = a;
	c->fd = cfd;
	c->next = a->connections;
	if (c->next)
		c->next->prev = c;
	a->connections = c;
	a->n_connections++;

	r = peer_read(cfd, &c->peer);
	if (r < 0) {
		log_warning("Failed to read peer credentials: %s", strerror(-r));
		connection_free(c);
		return 0;
	}
	/* The new connection is already on the list, hence "greater than". */
	if (c->peer.uid != 0 && connections_of_uid(a, c->peer.uid) > MAX_CONNECTIONS_PER_UID) {
		log_warning("Rejecting a connection of UID %u: it has %d open", (unsigned)c->peer.uid,
			    MAX_CONNECTIONS_PER_UID);
		connection_free(c);
		return 0;
	}
	r = sd_event_add_io(a->event, &c->source, cfd, EPOLLIN | EPOLLET, on_connection_io, c);
	if (r >= 0)
		r = sd_event_add_time_relative(a->event, &c->idle_timer, CLOCK_MONOTONIC,
					       IDLE_TIMEOUT_USEC, 0, on_idle_timeout, c);
	if (r < 0) {
		log_error("Failed to watch a connection: %s", strerror(-r));
		connection_free(c);
	}
	return 0;
}

static int fd_nonblock_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static int bind_socket(struct agent *a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *dir = NULL;
	int r;

	if (strlen(a->socket_path) >= sizeof(sa.sun_path)) {
		log_error("Socket path %s is too long: use at most %zu bytes", a->socket_path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, a->socket_path);

	/* Whoever may write the socket's directory could replace the socket
	 * and receive every credential that PAM verifies. */
	dir = strdup(a->socket_path);
	if (!dir)
		return -ENOMEM;
	r = check_ownership(dirname(dir), true);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(a->socket_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		log_error("Failed to bind socket %s: %s", a->socket_path, strerror(-r));
		return r;
	}
	/* Anyone may connect: each request is authorised by its peer's UID. */
	if (chmod(a->socket_path, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		log_error("Failed to listen on %s: %s", a->socket_path, strerror(-r));
		(void)unlink(a->socket_path);
		return r;
	}
	a->socket_bound = true;
	return MID_TAKE_FD(fd);
}

int server_listen(struct agent *a)
{
	int n, r;

	n = sd_listen_fds(true);
	if (n < 0) {
		log_error("Failed to read the sockets passed by systemd: %s", strerror(-n));
		return n;
	}
	if (n > 1) {
		log_error("systemd passed %d sockets; mid-agentd takes exactly one", n);
		return -EINVAL;
	}
	if (n == 1) {
		a->listen_fd = SD_LISTEN_FDS_START;
		r = sd_is_socket_unix(a->listen_fd, SOCK_SEQPACKET, 1, NULL, 0);
		if (r <= 0) {
			log_error("The socket passed by systemd is not a listening AF_UNIX "
				  "SOCK_SEQPACKET socket; use ListenSequentialPacket= in the unit");
			return r < 0 ? r : -EINVAL;
		}
		r = fd_nonblock_cloexec(a->listen_fd);
		if (r < 0)
			return r;
		log_info("Using the socket passed by systemd");
	} else {
		a->listen_fd = bind_socket(a);
		if (a->listen_fd < 0)
			return a->listen_fd;
		log_info("Listening on %s", a->socket_path);
	}

	r = sd_event_add_io(a->event, &a->listen_source, a->listen_fd, EPOLLIN, on_listen_io, a);
	if (r < 0) {
		log_error("Failed to watch the listening socket: %s", strerror(-r));
		return r;
	}
	r = sd_event_add_defer(a->event, &batch_source, on_batch, a);
	if (r >= 0)
		r = sd_event_source_set_priority(batch_source, SD_EVENT_PRIORITY_IDLE);
	if (r >= 0)
		r = sd_event_source_set_enabled(batch_source, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time_relative(a->event, &sync_timer, CLOCK_MONOTONIC,
					       SYNC_DELAY_USEC, 0, on_sync_timer, a);
	if (r >= 0)
		r = sd_event_source_set_enabled(sync_timer, SD_EVENT_OFF);
	if (r < 0)
		log_error("Failed to set up request batching: %s", strerror(-r));
	return r;
}

void server_stop(struct agent *a)
{
	while (a->connections)
		connection_free(a->connections);
	batch_source = sd_event_source_disable_unref(batch_source);
	for (size_t i = 0; i < BATCH_MAX; i++) {
		free(response_slots[i]);
		response_slots[i] = NULL;
	}
	sync_timer = sd_event_source_disable_unref(sync_timer);
	if (a->store && store_sync(a->store) < 0)
		log_error("Failed to sync verification records to disk before stopping");
	a->listen_source = sd_event_source_disable_unref(a->listen_source);
	if (a->listen_fd >= 0)
		close(a->listen_fd);
	a->listen_fd = -1;
	if (a->socket_bound)
		(void)unlink(a->socket_path);
}

/* Load generator for mid-agentd. CLIENTS connections each send a request
 * as soon as the reply to the last one came, for SECONDS, and every
 * latency is recorded; prints throughput and p50/p99 latency. A few
 * threads drive the connections with epoll, as wrk and memtier do, so that
 * the generator's own scheduling adds little to what is measured.
 *
 * Usage: bench_agent SOCKET verify CLIENTS SECONDS ACCOUNT CREDENTIAL
 *        bench_agent SOCKET issue CLIENTS SECONDS ACCOUNT|class:CLASS
 *        bench_agent SOCKET reload CLIENTS SECONDS -
 * BENCH_AGENT_THREADS sets the number of threads (default 2). With
 * BENCH_AGENT_RATE=N the clients together send N requests a second on a
 * fixed schedule instead, one outstanding request each, and a latency
 * counts from the time the schedule set, so a late reply also delays the
 * requests behind it in the figures. */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_CLIENTS 256
#define MAX_SAMPLES (1 << 20)

static const char *socket_path;
static int n_connections;
static struct mid_request request;
static int64_t deadline;

struct client {
	pthread_t thread;
	int first, count; /* connections first .. first + count - 1 */
	uint32_t *samples; /* microseconds */
	size_t n;
	size_t failures;
};

static int64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int connect_agent(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("bench_agent: connect");
		exit(1);
	}
	return fd;
}

struct conn {
	int fd;
	bool waiting;	 /* a request is out */
	int64_t sent_at; /* when it was due: with a rate, the schedule's time */
	int64_t next_at; /* with a rate, when the next request is due */
};

static uint8_t frame[MID_FRAME_MAX];
static size_t frame_len;
/* Nanoseconds between two requests of one connection; 0: back to back. */
static int64_t interval;

static void conn_send(struct conn *k, struct client *c, int64_t due)
{
	while (send(k->fd, frame, frame_len, MSG_NOSIGNAL) != (ssize_t)frame_len) {
		c->failures++;
		close(k->fd);
		k->fd = connect_agent();
	}
	k->sent_at = due;
	k->waiting = true;
	k->next_at = due + interval;
}

/* Sends what is due and returns the nanoseconds until the next request
 * falls due, or -1 when none waits for its time. */
static int64_t send_due(struct conn *conns, int count, struct client *c, int64_t now)
{
	int64_t wait = -1;

	for (int i = 0; i < count; i++) {
		struct conn *k = &conns[i];

		if (k->waiting || k->fd < 0 || k->next_at >= deadline)
			continue;
		if (k->next_at <= now)
			conn_send(k, c, interval ? k->next_at : now);
		else if (wait < 0 || k->next_at - now < wait)
			wait = k->next_at - now;
	}
	return wait;
}

static void *run_client(void *arg)
{
	struct client *c = arg;
	static _Thread_local uint8_t buf[MID_FRAME_MAX];
	struct mid_response *resp = malloc(sizeof(*resp));
	struct conn *conns = calloc((size_t)c->count, sizeof(*conns));
	struct epoll_event events[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), live = c->count;
	int64_t start = now_nsec();

	if (!resp || !conns || ep < 0)
		exit(1);
	for (int i = 0; i < c->count; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};

		conns[i].fd = connect_agent();
		if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
			exit(1);
		/* With a rate, the connections of all threads take turns. */
		conns[i].next_at = start + interval * (c->first + i) / n_connections;
	}

	while (live > 0) {
		int64_t now = now_nsec(), wait = send_due(conns, c->count, c, now);
		struct timespec timeout = {.tv_sec = 1};
		int n;

		if (wait >= 0)
			timeout = (struct timespec){.tv_sec = wait / 1000000000,
						    .tv_nsec = wait % 1000000000};
		n = epoll_pwait2(ep, events, 64, &timeout, NULL);
		for (int e = 0; e < n; e++) {
			struct conn *k = events[e].data.ptr;
			ssize_t len = recv(k->fd, buf, sizeof(buf), 0);

			now = now_nsec();
			if (len <= 0 || mid_response_decode(buf, (size_t)len, resp) < 0 ||
			    resp->status != MID_OK)
				c->failures++;
			else if (c->n < MAX_SAMPLES)
				c->samples[c->n++] = (uint32_t)((now - k->sent_at) / 1000);
			k->waiting = false;
			if (len <= 0) {
				struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};

				(void)epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
				close(k->fd);
				k->fd = connect_agent();
				if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev) < 0)
					exit(1);
			}
			if (k->next_at >= deadline) {
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
				close(k->fd);
				k->fd = -1;
				live--;
			}
		}
	}
	close(ep);
	free(conns);
	free(resp);
	return NULL;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static struct client clients[MAX_CLIENTS];
	int n_clients, n_threads;
	double seconds;
	uint32_t *all;
	size_t total = 0, failures = 0;

	if (argc < 6) {
		fprintf(stderr, "usage: bench_agent SOCKET verify|issue CLIENTS SECONDS ACCOUNT [CREDENTIAL]\n");
		return 2;
	}
	socket_path = argv[1];
	n_clients = atoi(argv[3]);
	seconds = atof(argv[4]);
	if (n_clients < 1 || n_clients > MAX_CLIENTS || seconds <= 0)
		return 2;

	if (strcmp(argv[2], "verify") == 0 && argc == 7) {
		request.type = MID_REQ_VERIFY;
		snprintf(request.account, sizeof(request.account), "%s", argv[5]);
		snprintf(request.credential, sizeof(request.credential), "%s", argv[6]);
		snprintf(request.service, sizeof(request.service), "bench");
	} else if (strcmp(argv[2], "issue") == 0) {
		request.type = MID_REQ_ISSUE;
		if (strncmp(argv[5], "class:", 6) == 0)
			snprintf(request.class_name, sizeof(request.class_name), "%s", argv[5] + 6);
		else
			snprintf(request.account, sizeof(request.account), "%s", argv[5]);
	} else if (strcmp(argv[2], "reload") == 0) {
		request.type = MID_REQ_RELOAD;
	} else
		return 2;

	{
		const char *t = getenv("BENCH_AGENT_THREADS");
		ssize_t len = mid_request_encode(&request, frame, sizeof(frame));

		const char *rate = getenv("BENCH_AGENT_RATE");

		n_threads = t ? atoi(t) : 2;
		n_connections = n_clients;
		if (rate && atof(rate) > 0)
			interval = (int64_t)(1e9 * n_clients / atof(rate));
		if (n_threads < 1 || len < 0)
			return 2;
		if (n_threads > n_clients)
			n_threads = n_clients;
		frame_len = (size_t)len;
	}
	deadline = now_nsec() + (int64_t)(seconds * 1e9);
	for (int i = 0, first = 0; i < n_threads; i++) {
		clients[i].first = first;
		clients[i].count = n_clients / n_threads + (i < n_clients % n_threads);
		first += clients[i].count;
		clients[i].samples = malloc(MAX_SAMPLES * sizeof(uint32_t));
		if (!clients[i].samples)
			return 1;
		pthread_create(&clients[i].thread, NULL, run_client, &clients[i]);
	}
	for (int i = 0; i < n_threads; i++) {
		pthread_join(clients[i].thread, NULL);
		total += clients[i].n;
		failures += clients[i].failures;
	}

	all = malloc((total + 1) * sizeof(uint32_t));
	if (!all)
		return 1;
	for (int i = 0, k = 0; i < n_threads; i++)
		for (size_t j = 0; j < clients[i].n; j++)
			all[k++] = clients[i].samples[j];
	qsort(all, total, sizeof(uint32_t), compare_u32);
	if (total == 0) {
		fprintf(stderr, "bench_agent: no request succeeded (%zu failures)\n", failures);
		return 1;
	}
	printf("%.0f %u %u %zu\n", (double)total / seconds, all[total / 2],
	       all[(size_t)((double)total * 0.99)], failures);
	return 0;
}

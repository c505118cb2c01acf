/* Load generator for mid-agentd: CLIENTS threads, each on its own
 * connection, send requests back to back for SECONDS and record every
 * latency. Prints throughput and p50/p99 latency.
 *
 * Usage: bench_agent SOCKET verify CLIENTS SECONDS ACCOUNT CREDENTIAL
 *        bench_agent SOCKET issue CLIENTS SECONDS ACCOUNT|class:CLASS */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_CLIENTS 256
#define MAX_SAMPLES (1 << 20)

static const char *socket_path;
static struct mid_request request;
static int64_t deadline;

struct client {
	pthread_t thread;
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

static void *run_client(void *arg)
{
	struct client *c = arg;
	static _Thread_local uint8_t buf[MID_FRAME_MAX];
	struct mid_response *resp = malloc(sizeof(*resp));
	ssize_t len = mid_request_encode(&request, buf, sizeof(buf));
	uint8_t frame[MID_FRAME_MAX];
	int fd = connect_agent();

	if (!resp || len < 0)
		exit(1);
	memcpy(frame, buf, (size_t)len);
	while (now_nsec() < deadline && c->n < MAX_SAMPLES) {
		int64_t start = now_nsec();
		ssize_t n;

		if (send(fd, frame, (size_t)len, MSG_NOSIGNAL) != len) {
			c->failures++;
			close(fd);
			fd = connect_agent();
			continue;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || mid_response_decode(buf, (size_t)n, resp) < 0 ||
		    resp->status != MID_OK) {
			c->failures++;
			if (n <= 0) {
				close(fd);
				fd = connect_agent();
			}
			continue;
		}
		c->samples[c->n++] = (uint32_t)((now_nsec() - start) / 1000);
	}
	close(fd);
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
	int n_clients;
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
	} else
		return 2;

	deadline = now_nsec() + (int64_t)(seconds * 1e9);
	for (int i = 0; i < n_clients; i++) {
		clients[i].samples = malloc(MAX_SAMPLES * sizeof(uint32_t));
		if (!clients[i].samples)
			return 1;
		pthread_create(&clients[i].thread, NULL, run_client, &clients[i]);
	}
	for (int i = 0; i < n_clients; i++) {
		pthread_join(clients[i].thread, NULL);
		total += clients[i].n;
		failures += clients[i].failures;
	}

	all = malloc((total + 1) * sizeof(uint32_t));
	if (!all)
		return 1;
	for (int i = 0, k = 0; i < n_clients; i++)
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

/* The agent under load, on its Unix socket only. A thousand concurrent
 * clients each get a reply, and idle and slow clients do not delay others.
 * A non-root UID is held to its connection limit, and a verification
 * flood from a non-root verifier gets MID_ERR_LIMIT while root's
 * verifications go on succeeding. The agent's memory stays bounded
 * throughout. The figures it measures are printed as TAP comments. */
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "hardening.h"
#include "harness.h"

#define POLICY                                                                                     \
	HARDENING_NO_LOCKOUT                                                                       \
	"verifiers = { users = [\"nobody\"]; };\n"                                                 \
	"accounts = (\n"                                                                           \
	"  { name = \"nobody\"; ttl = \"1h\"; },\n"                                                \
	"  { name = \"daemon\"; ttl = \"1h\"; }\n"                                                 \
	");\n"

#define CONCURRENT_CLIENTS 1000
#define IDLE_CLIENTS	   190
#define SLOW_CLIENTS	   10
#define SLOW_REQUESTS	   300 /* unread requests per slow client */
#define LATENCY_SAMPLES	   21
#define LATENCY_LIMIT_USEC 10000
#define NOBODY_CONNECTIONS 100
#define FLOOD_SECONDS	   3
#define FLOOD_MAX_REQUESTS 50000
/* The agent's documented bounds (agentd/server.c). */
#define AGENT_CONNECTIONS_PER_UID 64
#define AGENT_RATE_PER_SEC	  200
#define AGENT_RATE_BURST	  400
#define AGENT_IDLE_TIMEOUT_MS	  5000
/* Bound on the agent's resident memory during all of it. */
#define RSS_LIMIT_KIB (64 * 1024)

static struct harness agent;
static long rss_max_kib;

static void rss_sample(void)
{
	long rss = process_rss_kib(agent.pid);

	assert_true(rss > 0);
	if (rss > rss_max_kib)
		rss_max_kib = rss;
}

static void status_request(struct mid_request *req)
{
	*req = (struct mid_request){.type = MID_REQ_STATUS};
}

/* Sends a status request on every descriptor and waits up to timeout_ms
 * for the replies. Returns how many got a reply, and sets *ret_closed to
 * the number of connections the agent closed instead. */
static int replies_collect(const int *fds, int n, int timeout_ms, int *ret_closed)
{
	struct mid_request req;
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	uint8_t frame[64], *buf = malloc(MID_FRAME_MAX);
	int64_t deadline = monotonic_usec() + (int64_t)timeout_ms * 1000;
	ssize_t len;
	int answered = 0, closed = 0, pending = 0;

	assert_non_null(p);
	assert_non_null(buf);
	status_request(&req);
	len = mid_request_encode(&req, frame, sizeof(frame));
	assert_true(len > 0);
	for (int i = 0; i < n; i++) {
		p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		if (send(fds[i], frame, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len) {
			p[i].fd = -1;
			closed++;
			continue;
		}
		pending++;
	}
	while (pending > 0 && monotonic_usec() < deadline) {
		int left = (int)((deadline - monotonic_usec()) / 1000);
		int r = poll(p, (nfds_t)n, left > 0 ? left : 0);

		if (r <= 0)
			break;
		for (int i = 0; i < n; i++) {
			ssize_t got;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			got = recv(p[i].fd, buf, MID_FRAME_MAX, MSG_DONTWAIT);
			if (got < 0 && errno == EAGAIN)
				continue;
			if (got > 2)
				answered++;
			else
				closed++;
			p[i].fd = -1;
			pending--;
		}
	}
	free(p);
	free(buf);
	if (ret_closed)
		*ret_closed = closed;
	return answered;
}

static int *connections_open(int n)
{
	int *fds = calloc((size_t)n, sizeof(int));

	assert_non_null(fds);
	for (int i = 0; i < n; i++) {
		fds[i] = seqpacket_connect(agent.socket_path);
		if (fds[i] < 0)
			fail_msg("connection %d of %d failed: %s", i, n, strerror(-fds[i]));
	}
	return fds;
}

static void connections_close(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

static int64_t status_latency_usec(void)
{
	struct mid_request req;
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int64_t start = monotonic_usec(), usec;

	assert_non_null(resp);
	status_request(&req);
	/* A new connection per request, as pam_mid makes. */
	assert_int_equal(mid_client_call(agent.socket_path, 2000, &req, resp), 0);
	usec = monotonic_usec() - start;
	assert_int_equal(resp->status, MID_OK);
	free(resp);
	return usec;
}

static int64_t status_latency_median(void)
{
	int64_t samples[LATENCY_SAMPLES];

	for (int i = 0; i < LATENCY_SAMPLES; i++)
		samples[i] = status_latency_usec();
	return median_usec(samples, LATENCY_SAMPLES);
}

static void load_concurrent_clients_answered(void **state)
{
	int *fds = connections_open(CONCURRENT_CLIENTS);
	int64_t start;
	int answered, closed = 0;

	rss_sample();
	start = monotonic_usec();
	answered = replies_collect(fds, CONCURRENT_CLIENTS, 4000, &closed);
	printf("# %d concurrent clients: %d answered, %d closed, in %lld ms\n", CONCURRENT_CLIENTS,
	       answered, closed, (long long)(monotonic_usec() - start) / 1000);
	rss_sample();
	connections_close(fds, CONCURRENT_CLIENTS);

	assert_int_equal(closed, 0);
	assert_int_equal(answered, CONCURRENT_CLIENTS);
}

/* A peer that sends several requests without waiting gets every reply,
 * in order, though they may arrive under one readiness edge. */
static void load_pipelined_requests_answered(void **state)
{
	struct mid_request req;
	struct mid_response *resp = calloc(1, sizeof(*resp));
	uint8_t frame[64], *buf = malloc(MID_FRAME_MAX);
	int fd = seqpacket_connect(agent.socket_path), answered = 0;
	ssize_t len;

	assert_non_null(resp);
	assert_non_null(buf);
	assert_true(fd >= 0);
	status_request(&req);
	len = mid_request_encode(&req, frame, sizeof(frame));
	assert_true(len > 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(send(fd, frame, (size_t)len, MSG_NOSIGNAL), len);
	for (int i = 0; i < 5; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t got;

		if (poll(&p, 1, 2000) != 1)
			break;
		got = recv(fd, buf, MID_FRAME_MAX, 0);
		if (got > 0 && mid_response_decode(buf, (size_t)got, resp) == 0 &&
		    resp->status == MID_OK)
			answered++;
	}
	close(fd);
	free(buf);
	free(resp);
	assert_int_equal(answered, 5);
}

static void load_idle_clients_no_delay(void **state)
{
	int64_t baseline = status_latency_median(), loaded, opened_at;
	int *idle = connections_open(IDLE_CLIENTS);
	int *slow = connections_open(SLOW_CLIENTS);
	struct mid_request req;
	uint8_t frame[64], buf[256];
	ssize_t len;
	int still_open = 0;

	opened_at = monotonic_usec();
	/* Slow clients send requests and never read the replies. */
	status_request(&req);
	len = mid_request_encode(&req, frame, sizeof(frame));
	assert_true(len > 0);
	for (int i = 0; i < SLOW_CLIENTS; i++)
		for (int j = 0; j < SLOW_REQUESTS; j++)
			if (send(slow[i], frame, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) != len)
				break;

	loaded = status_latency_median();
	rss_sample();
	printf("# status latency, median of %d: %lld us alone, %lld us with %d idle and %d slow "
	       "clients\n",
	       LATENCY_SAMPLES, (long long)baseline, (long long)loaded, IDLE_CLIENTS, SLOW_CLIENTS);
	assert_true(loaded < LATENCY_LIMIT_USEC);

	/* The idle connections are still open now, and the agent closes each
	 * one after its idle timeout. */
	for (int i = 0; i < IDLE_CLIENTS; i++)
		still_open += seqpacket_recv(idle[i], buf, sizeof(buf), 0) == -ETIMEDOUT;
	assert_int_equal(still_open, IDLE_CLIENTS);
	while (monotonic_usec() - opened_at < (AGENT_IDLE_TIMEOUT_MS + 700) * 1000LL)
		usleep(50000);
	for (int i = 0; i < IDLE_CLIENTS; i++)
		if (seqpacket_recv(idle[i], buf, sizeof(buf), 500) != 0)
			fail_msg("idle connection %d is still open after the idle timeout", i);
	connections_close(idle, IDLE_CLIENTS);
	connections_close(slow, SLOW_CLIENTS);
}

static void become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
		perror("switching to nobody");
		_exit(100);
	}
}

static void load_uid_connection_limit(void **state)
{
	int pipefd[2], status, counts[2] = {0, 0};
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fds[NOBODY_CONNECTIONS];

		child_signals_reset();
		alarm(20);
		become_nobody();
		for (int i = 0; i < NOBODY_CONNECTIONS; i++)
			fds[i] = seqpacket_connect(agent.socket_path);
		counts[0] = replies_collect(fds, NOBODY_CONNECTIONS, 3000, &counts[1]);
		if (write(pipefd[1], counts, sizeof(counts)) != sizeof(counts))
			_exit(101);
		_exit(0);
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], counts, sizeof(counts)), (ssize_t)sizeof(counts));
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	printf("# %d connections from nobody: %d answered, %d closed\n", NOBODY_CONNECTIONS,
	       counts[0], counts[1]);
	assert_int_equal(counts[0], AGENT_CONNECTIONS_PER_UID);
	assert_int_equal(counts[1], NOBODY_CONNECTIONS - AGENT_CONNECTIONS_PER_UID);
	/* Root is not held to the limit. */
	assert_true(status_latency_usec() < LATENCY_LIMIT_USEC * 10);
}

struct flood_counts {
	long sent;
	long limited;
	long rejected; /* MID_ERR_BAD_CREDENTIAL: the request was served */
	long other;
	long errors;
};

/* Verifies a wrong credential as fast as one connection allows, for
 * FLOOD_SECONDS or FLOOD_MAX_REQUESTS requests. */
static void flood_run(struct flood_counts *c)
{
	struct mid_request req = {.type = MID_REQ_VERIFY};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int64_t end = monotonic_usec() + FLOOD_SECONDS * 1000000LL;
	int fd = seqpacket_connect(agent.socket_path);

	if (!resp || fd < 0)
		_exit(102);
	snprintf(req.account, sizeof(req.account), "daemon");
	snprintf(req.credential, sizeof(req.credential), "mid1_0123456789abcdef_%064d_00000000", 7);
	while (monotonic_usec() < end && c->sent < FLOOD_MAX_REQUESTS) {
		int r = seqpacket_call(fd, &req, resp, 2000);

		c->sent++;
		if (r == MID_ERR_LIMIT)
			c->limited++;
		else if (r == MID_ERR_BAD_CREDENTIAL)
			c->rejected++;
		else if (r >= 0)
			c->other++;
		else {
			/* The agent closed an idle or failed connection: reconnect. */
			c->errors++;
			close(fd);
			fd = seqpacket_connect(agent.socket_path);
			if (fd < 0)
				break;
		}
	}
	if (fd >= 0)
		close(fd);
	free(resp);
}

static void load_verify_flood_limited(void **state)
{
	char cred[MID_CREDENTIAL_MAX + 1];
	struct mid_request req = {.type = MID_REQ_VERIFY};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	struct flood_counts flood = {0};
	int64_t *latency = calloc(100000, sizeof(int64_t));
	int64_t start;
	long root_ok = 0, root_failed = 0, n = 0;
	int pipefd[2], status;
	pid_t pid;

	assert_non_null(resp);
	assert_non_null(latency);
	assert_int_equal(harness_issue(&agent, "nobody", NULL, 0, cred, NULL), MID_OK);
	snprintf(req.account, sizeof(req.account), "nobody");
	snprintf(req.credential, sizeof(req.credential), "%s", cred);
	snprintf(req.service, sizeof(req.service), "sshd");

	assert_int_equal(pipe(pipefd), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_signals_reset();
		alarm(FLOOD_SECONDS + 20);
		become_nobody();
		flood_run(&flood);
		if (write(pipefd[1], &flood, sizeof(flood)) != sizeof(flood))
			_exit(101);
		_exit(0);
	}
	close(pipefd[1]);

	/* Root verifies a live credential meanwhile, as PAM for sshd would. */
	start = monotonic_usec();
	while (monotonic_usec() - start < FLOOD_SECONDS * 1000000LL && n < 100000) {
		int64_t t = monotonic_usec();
		int r = mid_client_call(agent.socket_path, 2000, &req, resp);

		latency[n++] = monotonic_usec() - t;
		if (r == 0 && resp->status == MID_OK)
			root_ok++;
		else
			root_failed++;
		if (n % 50 == 0)
			rss_sample();
	}
	rss_sample();
	assert_int_equal(read(pipefd[0], &flood, sizeof(flood)), (ssize_t)sizeof(flood));
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	printf("# flood from nobody over %d s: %ld requests, %ld served, %ld MID_ERR_LIMIT, "
	       "%ld other, %ld connection errors\n",
	       FLOOD_SECONDS, flood.sent, flood.rejected, flood.limited, flood.other, flood.errors);
	printf("# root meanwhile: %ld verified, %ld failed, median %lld us\n", root_ok, root_failed,
	       (long long)median_usec(latency, (size_t)n));

	assert_true(flood.limited > 0);
	assert_true(flood.rejected > 0);
	assert_int_equal(flood.other, 0);
	/* The bucket: a burst, then the rate, with one second of slack. */
	assert_true(flood.rejected <= AGENT_RATE_BURST + AGENT_RATE_PER_SEC * (FLOOD_SECONDS + 1));
	assert_int_equal(root_failed, 0);
	assert_true(root_ok >= 10);
	free(resp);
	free(latency);
}

static void load_agent_rss_bounded(void **state)
{
	rss_sample();
	printf("# agent VmRSS: at most %ld KiB during the load tests\n", rss_max_kib);
	if (sanitizer_build()) {
		printf("# RSS bound not checked: AddressSanitizer shadow memory inflates RSS\n");
		return;
	}
	assert_true(rss_max_kib < RSS_LIMIT_KIB);
}

static int group_setup(void **state)
{
	struct rlimit rl;

	/* Room for the concurrent clients and the test's own descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur < CONCURRENT_CLIENTS + 200) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur < CONCURRENT_CLIENTS + 200 || setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			fprintf(stderr, "# cannot raise RLIMIT_NOFILE to %d\n",
				CONCURRENT_CLIENTS + 200);
			return -1;
		}
	}
	if (harness_start(&agent, NULL, POLICY) < 0)
		return -1;
	/* Clients running as the user nobody must reach the socket in it. */
	if (chmod(agent.dir, 0755) < 0)
		return -1;
	rss_max_kib = process_rss_kib(agent.pid);
	return 0;
}

static int group_teardown(void **state)
{
	harness_stop(&agent);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(load_concurrent_clients_answered),
	    cmocka_unit_test(load_idle_clients_no_delay),
	    cmocka_unit_test(load_pipelined_requests_answered),
	    cmocka_unit_test(load_uid_connection_limit),
	    cmocka_unit_test(load_verify_flood_limited),
	    cmocka_unit_test(load_agent_rss_bounded),
	};

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_load: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root: the agent limits the connections and requests of "
		       "other users\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("agent load", tests, group_setup, group_teardown);
}

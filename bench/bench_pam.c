/* Times whole PAM transactions: pam_start, pam_authenticate,
 * pam_acct_mgmt, pam_end, answering the prompt with SECRET. Prints the
 * median microseconds per transaction over BENCH_ROUNDS rounds.
 * Usage: bench_pam SERVICE USER SECRET
 *
 * With --socket-floor DIR it times instead the least that any module
 * sending a request to a local daemon pays: a connect, a request the size
 * of a verification, its reply and a close. The daemon is a child process
 * that only echoes each request back through epoll. */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(data);
	*resp = r;
	return PAM_SUCCESS;
}

static int transaction(const char *service, const char *user, char *secret)
{
	struct pam_conv c = {.conv = conv, .appdata_ptr = secret};
	pam_handle_t *pamh = NULL;
	int r;

	r = pam_start(service, user, &c, &pamh);
	if (r == PAM_SUCCESS)
		r = pam_authenticate(pamh, 0);
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(pamh, 0);
	pam_end(pamh, r);
	return r;
}

static struct sockaddr_un echo_addr = {.sun_family = AF_UNIX};

static void echo_serve(int listener)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
	char buf[4096];

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) < 0)
		_exit(1);
	for (;;) {
		struct epoll_event events[16];
		int n = epoll_wait(ep, events, 16, -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			ssize_t len;

			if (fd == listener) {
				int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
				struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};

				if (c >= 0)
					(void)epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				continue;
			}
			len = recv(fd, buf, sizeof(buf), 0);
			if (len <= 0 || send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len)
				close(fd);
		}
	}
}

/* Starts the echo process on DIR/echo.sock. */
static pid_t echo_start(const char *dir)
{
	int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	pid_t pid;

	snprintf(echo_addr.sun_path, sizeof(echo_addr.sun_path), "%s/echo.sock", dir);
	unlink(echo_addr.sun_path);
	if (listener < 0 || bind(listener, (struct sockaddr *)&echo_addr, sizeof(echo_addr)) < 0 ||
	    listen(listener, 128) < 0) {
		perror("bench_pam: echo socket");
		exit(1);
	}
	pid = fork();
	if (pid == 0)
		echo_serve(listener);
	close(listener);
	return pid;
}

static int echo_round_trip(const char *service, const char *user, char *secret)
{
	char frame[600] = {1};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int r = -1;

	(void)service;
	(void)user;
	(void)secret;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&echo_addr, sizeof(echo_addr)) == 0 &&
	    send(fd, frame, sizeof(frame), MSG_NOSIGNAL) == (ssize_t)sizeof(frame) &&
	    recv(fd, frame, sizeof(frame), 0) == (ssize_t)sizeof(frame))
		r = PAM_SUCCESS;
	if (fd >= 0)
		close(fd);
	return r;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = getenv("BENCH_ROUNDS") ? atoi(getenv("BENCH_ROUNDS")) : 7;
	int64_t round_nsec = (getenv("BENCH_ROUND_MS") ? atoll(getenv("BENCH_ROUND_MS")) : 300) *
			     1000000LL;
	int (*run)(const char *, const char *, char *) = transaction;
	double per[64];
	pid_t echo = 0;

	if (argc == 3 && strcmp(argv[1], "--socket-floor") == 0) {
		echo = echo_start(argv[2]);
		run = echo_round_trip;
	} else if (argc != 4 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: bench_pam SERVICE USER SECRET | --socket-floor DIR\n");
		return 2;
	}
	if (rounds < 1 || rounds > 64)
		return 2;
	/* The first call also waits for the echo process to run. */
	for (int i = 0; echo && i < 100 && run(argv[1], argv[2], argv[3]) != PAM_SUCCESS; i++)
		usleep(10000);
	if (run(argv[1], argv[2], argv[3]) != PAM_SUCCESS) {
		fprintf(stderr, "bench_pam: %s: the first transaction failed\n", argv[1]);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		int64_t start = now_nsec(), end, n = 0;

		do {
			if (run(argv[1], argv[2], argv[3]) != PAM_SUCCESS) {
				fprintf(stderr, "bench_pam: %s: a transaction failed\n", argv[1]);
				return 1;
			}
			n++;
			end = now_nsec();
		} while (end - start < round_nsec);
		per[i] = (double)(end - start) / (double)n / 1000.0;
	}
	if (echo) {
		kill(echo, SIGKILL);
		waitpid(echo, NULL, 0);
		unlink(echo_addr.sun_path);
	}
	qsort(per, (size_t)rounds, sizeof(double), compare);
	printf("%.1f\n", per[rounds / 2]);
	return 0;
}

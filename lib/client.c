/* Client side of the agent protocol. */
#include "client.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	return left > 0 ? (int)left : 0;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int left = remaining_ms(deadline);
		int n;

		if (left == 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

static int connect_agent(const char *socket_path, int64_t deadline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	int r;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, socket_path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;

	/* A full backlog makes connect fail with EAGAIN on a Unix socket, so retry
	 * until the deadline. */
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS) {
			r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			break;
		}
		if (errno != EAGAIN)
			return -errno;
		if (remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return MID_TAKE_FD(fd);
}

int mid_client_call(const char *socket_path, int timeout_ms, const struct mid_request *req,
		    struct mid_response *ret)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	_cleanup_close_ int fd = -1;
	uint8_t *buf;
	ssize_t n, sent;
	int r;

	buf = malloc(MID_FRAME_MAX);
	if (!buf)
		return -ENOMEM;

	fd = connect_agent(socket_path, deadline);
	if (fd < 0) {
		r = fd;
		goto out;
	}

	n = mid_request_encode(req, buf, MID_FRAME_MAX);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	r = wait_fd(fd, POLLOUT, deadline);
	if (r < 0)
		goto out;
	sent = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
	if (sent < 0) {
		r = -errno;
		goto out;
	}
	if (sent != n) {
		r = -EIO;
		goto out;
	}
	explicit_bzero(buf, (size_t)n);

	for (;;) {
		r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			goto out;
		n = recv(fd, buf, MID_FRAME_MAX, MSG_TRUNC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		break;
	}
	if (n < 0) {
		r = -errno;
		goto out;
	}
	if (n == 0) {
		r = -ECONNRESET;
		goto out;
	}
	if (n > MID_FRAME_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	r = mid_response_decode(buf, (size_t)n, ret);
out:
	explicit_bzero(buf, MID_FRAME_MAX);
	free(buf);
	return r;
}

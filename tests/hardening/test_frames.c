/* Hostile frames on the agent's socket: raw SOCK_SEQPACKET clients send
 * empty, truncated, oversized, trailing-garbage, wrong-version,
 * unknown-type and random frames. Each must close the connection (a wrong
 * version first gets a MID_ERR_VERSION reply), and the agent must go on
 * serving status requests with bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "hardening.h"
#include "harness.h"

#define POLICY HARDENING_NO_LOCKOUT "accounts = ( { name = \"nobody\"; ttl = \"5m\"; } );\n"

/* Bound on the agent's resident memory after all the frames here. The
 * agent's steady state is a few MiB; see the figures this test prints. */
#define RSS_LIMIT_KIB	     (64 * 1024)
#define RSS_GROWTH_LIMIT_KIB (8 * 1024)
#define CLOSE_TIMEOUT_MS     2000

static struct harness agent;
static long rss_at_start_kib;

static size_t verify_frame(uint8_t *buf, size_t size)
{
	struct mid_request req = {.type = MID_REQ_VERIFY};
	ssize_t n;

	snprintf(req.account, sizeof(req.account), "nobody");
	snprintf(req.credential, sizeof(req.credential), "mid1_0123456789abcdef_%064d_00000000", 0);
	snprintf(req.service, sizeof(req.service), "sshd");
	snprintf(req.rhost, sizeof(req.rhost), "127.0.0.1");
	snprintf(req.tty, sizeof(req.tty), "pts/0");
	n = mid_request_encode(&req, buf, size);
	assert_true(n > 0);
	return (size_t)n;
}

static size_t issue_frame(uint8_t *buf, size_t size)
{
	struct mid_request req = {.type = MID_REQ_ISSUE, .ttl = 60};
	ssize_t n;

	snprintf(req.account, sizeof(req.account), "nobody");
	snprintf(req.reason, sizeof(req.reason), "hardening test");
	n = mid_request_encode(&req, buf, size);
	assert_true(n > 0);
	return (size_t)n;
}

/* Sends one frame on a new connection and returns what came back: the
 * reply's length, 0 when the agent closed the connection, or -errno. The
 * reply, if any, is copied to reply. */
static ssize_t frame_send(const void *frame, size_t len, uint8_t *reply, size_t reply_size)
{
	uint8_t *buf = malloc(MID_FRAME_MAX);
	ssize_t n;
	int fd = seqpacket_connect(agent.socket_path);

	assert_non_null(buf);
	assert_true(fd >= 0);
	/* Room for the oversized frames whatever the host's default. Only
	 * root may pass net.core.wmem_max. */
	if (len > MID_FRAME_MAX) {
		int size = (int)len * 2;

		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	if (send(fd, frame, len, MSG_NOSIGNAL) != (ssize_t)len) {
		n = -errno;
		close(fd);
		free(buf);
		return n;
	}
	n = seqpacket_recv(fd, buf, MID_FRAME_MAX, CLOSE_TIMEOUT_MS);
	if (n > 0 && reply)
		memcpy(reply, buf, (size_t)n < reply_size ? (size_t)n : reply_size);
	close(fd);
	free(buf);
	return n;
}

static void assert_closed(const char *description, const void *frame, size_t len)
{
	ssize_t n = frame_send(frame, len, NULL, 0);

	if (n != 0)
		fail_msg("%s (%zu bytes): expected the agent to close the connection, got %s %zd",
			 description, len, n > 0 ? "a reply of" : "error", n);
}

static void assert_agent_serves(void)
{
	struct mid_request req = {.type = MID_REQ_STATUS};
	struct mid_response *resp = calloc(1, sizeof(*resp));

	assert_non_null(resp);
	assert_int_equal(harness_call(&agent, &req, resp), MID_OK);
	assert_int_equal(resp->agent.pid, agent.pid);
	free(resp);
}

static void frame_empty_closed(void **state)
{
	assert_closed("empty frame", "", 0);
	assert_agent_serves();
}

static void frame_version_only_closed(void **state)
{
	uint8_t frame[] = {MID_PROTOCOL_VERSION};

	assert_closed("version byte alone", frame, sizeof(frame));
	assert_agent_serves();
}

static void frame_verify_prefixes_closed(void **state)
{
	uint8_t frame[512];
	size_t len = verify_frame(frame, sizeof(frame));

	for (size_t cut = 0; cut < len; cut++)
		assert_closed("verify frame prefix", frame, cut);
	assert_agent_serves();
}

static void frame_issue_prefixes_closed(void **state)
{
	uint8_t frame[512];
	size_t len = issue_frame(frame, sizeof(frame));

	for (size_t cut = 0; cut < len; cut++)
		assert_closed("issue frame prefix", frame, cut);
	assert_agent_serves();
}

static void frame_trailing_garbage_closed(void **state)
{
	uint8_t frame[600];
	size_t len = verify_frame(frame, sizeof(frame) - 64);
	uint8_t status[3] = {MID_PROTOCOL_VERSION, MID_REQ_STATUS, 0};

	frame[len] = 'x';
	assert_closed("verify frame and one byte", frame, len + 1);
	memset(frame + len, 0, 64);
	assert_closed("verify frame and 64 zero bytes", frame, len + 64);
	assert_closed("status frame and one byte", status, sizeof(status));
	assert_agent_serves();
}

static void frame_oversized_closed(void **state)
{
	const size_t sizes[] = {MID_FRAME_MAX + 1, 65536, 150000};
	uint8_t *frame = malloc(sizes[2]);

	assert_non_null(frame);
	for (size_t i = 0; i < MID_ELEMENTSOF(sizes); i++) {
		/* A valid status request at the front: only the size is wrong. */
		memset(frame, 'A', sizes[i]);
		frame[0] = MID_PROTOCOL_VERSION;
		frame[1] = MID_REQ_STATUS;
		assert_closed("oversized frame", frame, sizes[i]);
	}
	free(frame);
	assert_agent_serves();
}

static void frame_max_size_garbage_closed(void **state)
{
	uint8_t *frame = malloc(MID_FRAME_MAX);

	assert_non_null(frame);
	memset(frame, 0x01, MID_FRAME_MAX);
	assert_closed("frame of MID_FRAME_MAX bytes", frame, MID_FRAME_MAX);
	free(frame);
	assert_agent_serves();
}

static void frame_wrong_version_replies(void **state)
{
	const uint8_t versions[] = {0, MID_PROTOCOL_VERSION + 1, 255};

	for (size_t i = 0; i < MID_ELEMENTSOF(versions); i++) {
		uint8_t frame[] = {versions[i], MID_REQ_STATUS};
		uint8_t reply[64] = {0};
		ssize_t n = frame_send(frame, sizeof(frame), reply, sizeof(reply));

		if (n < 3)
			fail_msg("version %u: expected a reply, got %zd", versions[i], n);
		assert_int_equal(reply[0], MID_PROTOCOL_VERSION);
		assert_int_equal(reply[2], MID_ERR_VERSION);
	}
	assert_agent_serves();
}

static void frame_wrong_version_then_closed(void **state)
{
	uint8_t frame[] = {MID_PROTOCOL_VERSION + 1, MID_REQ_STATUS};
	uint8_t buf[256];
	int fd = seqpacket_connect(agent.socket_path);

	assert_true(fd >= 0);
	assert_int_equal(send(fd, frame, sizeof(frame), MSG_NOSIGNAL), (ssize_t)sizeof(frame));
	assert_true(seqpacket_recv(fd, buf, sizeof(buf), CLOSE_TIMEOUT_MS) > 0);
	assert_int_equal(seqpacket_recv(fd, buf, sizeof(buf), CLOSE_TIMEOUT_MS), 0);
	close(fd);
	assert_agent_serves();
}

static void frame_unknown_type_closed(void **state)
{
	const uint8_t types[] = {0, _MID_REQ_MAX, 128, 255};

	for (size_t i = 0; i < MID_ELEMENTSOF(types); i++) {
		uint8_t frame[] = {MID_PROTOCOL_VERSION, types[i]};

		assert_closed("unknown request type", frame, sizeof(frame));
	}
	assert_agent_serves();
}

/* A verify frame whose account field is `len` bytes of 'a'. */
static size_t long_account_frame(uint8_t *buf, size_t size, size_t len)
{
	size_t pos = 0;

	assert_true(len + 16 <= size);
	buf[pos++] = MID_PROTOCOL_VERSION;
	buf[pos++] = MID_REQ_VERIFY;
	buf[pos++] = (uint8_t)(len & 0xff);
	buf[pos++] = (uint8_t)(len >> 8);
	memset(buf + pos, 'a', len);
	pos += len;
	/* credential, service, rhost and tty: empty strings. */
	memset(buf + pos, 0, 8);
	return pos + 8;
}

static void frame_string_over_limit_closed(void **state)
{
	const size_t lengths[] = {MID_NAME_MAX + 1, 256, 4096, 30000};
	uint8_t *frame = malloc(MID_FRAME_MAX);

	assert_non_null(frame);
	for (size_t i = 0; i < MID_ELEMENTSOF(lengths); i++) {
		size_t len = long_account_frame(frame, MID_FRAME_MAX, lengths[i]);

		assert_closed("account field over MID_NAME_MAX", frame, len);
	}
	free(frame);
	assert_agent_serves();
}

static void frame_string_past_end_closed(void **state)
{
	/* The account's length field is 20, but 3 bytes follow. */
	uint8_t short_field[] = {MID_PROTOCOL_VERSION, MID_REQ_VERIFY, 20, 0, 'a', 'b', 'c'};
	/* The largest length a u16 can carry, with nothing after it. */
	uint8_t huge_field[] = {MID_PROTOCOL_VERSION, MID_REQ_VERIFY, 0xff, 0xff};

	assert_closed("string length past the frame's end", short_field, sizeof(short_field));
	assert_closed("string length 65535", huge_field, sizeof(huge_field));
	assert_agent_serves();
}

static void frame_embedded_nul_closed(void **state)
{
	uint8_t frame[64];
	size_t len = long_account_frame(frame, sizeof(frame), 6);

	memcpy(frame + 4, "no\0ody", 6);
	assert_closed("NUL inside the account field", frame, len);
	assert_agent_serves();
}

static void frame_good_then_bad_closed(void **state)
{
	struct mid_request req = {.type = MID_REQ_STATUS};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	uint8_t garbage[] = {MID_PROTOCOL_VERSION, MID_REQ_VERIFY, 0xff};
	uint8_t buf[256];
	int fd = seqpacket_connect(agent.socket_path);

	assert_non_null(resp);
	assert_true(fd >= 0);
	/* Requests on one connection are served until the first bad one. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(seqpacket_call(fd, &req, resp, CLOSE_TIMEOUT_MS), MID_OK);
	assert_int_equal(send(fd, garbage, sizeof(garbage), MSG_NOSIGNAL),
			 (ssize_t)sizeof(garbage));
	assert_int_equal(seqpacket_recv(fd, buf, sizeof(buf), CLOSE_TIMEOUT_MS), 0);
	close(fd);
	free(resp);
	assert_agent_serves();
}

static void frame_peer_gone_before_reply(void **state)
{
	uint8_t frame[512];
	size_t len = verify_frame(frame, sizeof(frame));

	/* The reply finds no reader: the agent must not die of SIGPIPE. */
	for (int i = 0; i < 100; i++) {
		int fd = seqpacket_connect(agent.socket_path);

		assert_true(fd >= 0);
		assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
		close(fd);
	}
	assert_agent_serves();
}

static void frame_random_bytes_survived(void **state)
{
	unsigned seed = test_seed(1);
	uint8_t frame[400], reply[256];
	int version_replies = 0, other_replies = 0, closed = 0;

	printf("# random frames with seed %u\n", seed);
	srandom(seed);
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)(random() % (long)sizeof(frame));
		ssize_t n;

		for (size_t j = 0; j < len; j++)
			frame[j] = (uint8_t)random();
		/* Half of them look like this protocol's version at least. */
		if (len > 0 && i % 2)
			frame[0] = MID_PROTOCOL_VERSION;
		n = frame_send(frame, len, reply, sizeof(reply));
		if (n < 0)
			fail_msg("random frame %d (%zu bytes): error %zd", i, len, n);
		if (n == 0) {
			closed++;
			continue;
		}
		/* Two bytes or more with another version byte get MID_ERR_VERSION. */
		if (frame[0] != MID_PROTOCOL_VERSION) {
			if (n < 3 || reply[2] != MID_ERR_VERSION)
				fail_msg(
				    "random frame %d with version %u: expected MID_ERR_VERSION", i,
				    frame[0]);
			version_replies++;
		} else
			other_replies++;
	}
	printf("# random frames: %d version replies, %d other replies, %d closed connections\n",
	       version_replies, other_replies, closed);
	assert_agent_serves();
}

static void frame_agent_rss_bounded(void **state)
{
	long rss = process_rss_kib(agent.pid);

	printf("# agent VmRSS: %ld KiB at start, %ld KiB after the frames\n", rss_at_start_kib,
	       rss);
	assert_true(rss > 0);
	if (sanitizer_build()) {
		printf("# RSS bounds not checked: AddressSanitizer shadow memory inflates RSS\n");
		return;
	}
	assert_true(rss < RSS_LIMIT_KIB);
	assert_true(rss - rss_at_start_kib < RSS_GROWTH_LIMIT_KIB);
}

static int group_setup(void **state)
{
	if (harness_start(&agent, NULL, POLICY) < 0)
		return -1;
	rss_at_start_kib = process_rss_kib(agent.pid);
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
	    cmocka_unit_test(frame_empty_closed),
	    cmocka_unit_test(frame_version_only_closed),
	    cmocka_unit_test(frame_verify_prefixes_closed),
	    cmocka_unit_test(frame_issue_prefixes_closed),
	    cmocka_unit_test(frame_trailing_garbage_closed),
	    cmocka_unit_test(frame_oversized_closed),
	    cmocka_unit_test(frame_max_size_garbage_closed),
	    cmocka_unit_test(frame_wrong_version_replies),
	    cmocka_unit_test(frame_wrong_version_then_closed),
	    cmocka_unit_test(frame_unknown_type_closed),
	    cmocka_unit_test(frame_string_over_limit_closed),
	    cmocka_unit_test(frame_string_past_end_closed),
	    cmocka_unit_test(frame_embedded_nul_closed),
	    cmocka_unit_test(frame_good_then_bad_closed),
	    cmocka_unit_test(frame_peer_gone_before_reply),
	    cmocka_unit_test(frame_random_bytes_survived),
	    cmocka_unit_test(frame_agent_rss_bounded),
	};

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_frames: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	return cmocka_run_group_tests_name("agent frames", tests, group_setup, group_teardown);
}

/* Helpers shared by the hardening tests: clocks and medians, the agent's
 * resident memory, snapshots of its directories, raw connections to its
 * socket and the descriptors a process holds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

/* Policy lines every hardening test starts from: no lockout, so that
 * repeated failures measure the agent and not its lock table. */
#define HARDENING_NO_LOCKOUT "lockout = { failures = 0; };\n"

/* CLOCK_MONOTONIC in microseconds. */
int64_t monotonic_usec(void);

/* Sorts values in place and returns their median. */
int64_t median_usec(int64_t *values, size_t n);

/* Seed for a test's random input: MID_TEST_SEED when set, else fallback,
 * so that a run can be repeated. */
unsigned test_seed(unsigned fallback);

/* VmRSS of pid from /proc/PID/status in KiB, or -1 when unreadable. */
long process_rss_kib(pid_t pid);

/* True in a build with AddressSanitizer, whose shadow memory inflates
 * every RSS figure and which cannot run in uninstrumented programs. */
bool sanitizer_build(void);

/* Lists every entry under dir, recursively, one line each with its path,
 * type, size, mtime in nanoseconds and inode, sorted by path. The caller
 * frees the text. Returns NULL on failure. */
char *dir_snapshot(const char *dir);

/* Reads a whole file into a NUL-terminated buffer and sets *ret_size to
 * its length. The caller frees it. Returns NULL on failure. */
char *file_read_all(const char *path, size_t *ret_size);

/* Returns the size of the file at path, or -1. */
long file_size(const char *path);

/* Connects a blocking SOCK_SEQPACKET socket to path. Returns the
 * descriptor (close-on-exec) or -errno. */
int seqpacket_connect(const char *path);

/* Waits up to timeout_ms for one message. Returns its length (which may
 * exceed size, as with MSG_TRUNC), 0 when the peer closed the connection,
 * -ETIMEDOUT or another -errno. */
ssize_t seqpacket_recv(int fd, void *buf, size_t size, int timeout_ms);

/* Encodes req, sends it on fd, and decodes one reply into resp within
 * timeout_ms. Returns the reply's status or -errno. */
int seqpacket_call(int fd, const struct mid_request *req, struct mid_response *resp,
		   int timeout_ms);

/* Targets of this process's open descriptors, one per line, with socket
 * and pipe inode numbers removed so that two lists compare by kind. The
 * caller frees the text. */
char *descriptor_list(void);

/* Runs `ls -l /proc/self/fd` in a forked and exec'd child with an empty
 * environment and returns the descriptor targets it inherited, in the
 * form of descriptor_list, or NULL on failure. */
char *child_descriptor_list(void);

/* Restores the default action of the signals cmocka catches, so that a
 * crash in a forked child kills the child instead of resuming cmocka's
 * test loop there. */
void child_signals_reset(void);

/* Escapes bytes outside printable ASCII as \xHH into out, for messages. */
const char *bytes_escape(const char *s, char *out, size_t out_size);

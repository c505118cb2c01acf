/* Helpers shared by the hardening tests. */
#include "hardening.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int int64_compare(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int64_t median_usec(int64_t *values, size_t n)
{
	if (n == 0)
		return 0;
	qsort(values, n, sizeof(*values), int64_compare);
	if (n % 2)
		return values[n / 2];
	return (values[n / 2 - 1] + values[n / 2]) / 2;
}

unsigned test_seed(unsigned fallback)
{
	const char *text = getenv("MID_TEST_SEED");

	return text && *text ? (unsigned)strtoul(text, NULL, 0) : fallback;
}

long process_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

bool sanitizer_build(void)
{
	const char *asan = getenv("MID_ASAN_LIB");

	return asan && *asan;
}

struct text {
	char *data;
	size_t len, size;
};

static int text_append(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->size) {
		size_t size = (t->size ? t->size * 2 : 4096) + n;
		char *p = realloc(t->data, size);

		if (!p)
			return -ENOMEM;
		t->data = p;
		t->size = size;
	}
	memcpy(t->data + t->len, s, n + 1);
	t->len += n;
	return 0;
}

static int line_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects one line per entry under dir (relative to base) into lines. */
static int snapshot_walk(const char *base, const char *rel, char ***lines, size_t *n)
{
	char path[4096];
	DIR *d;
	struct dirent *de;
	int r = 0;

	snprintf(path, sizeof(path), "%s%s%s", base, *rel ? "/" : "", rel);
	d = opendir(path);
	if (!d)
		return -errno;
	while (r == 0 && (de = readdir(d))) {
		char child_rel[4096], child[8192], line[8400];
		struct stat st;
		char **grown;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(child_rel, sizeof(child_rel), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		snprintf(child, sizeof(child), "%s/%s", base, child_rel);
		if (lstat(child, &st) < 0)
			continue;
		snprintf(line, sizeof(line), "%s type=%o size=%lld mtime=%lld.%09ld ino=%llu\n",
			 child_rel, (unsigned)(st.st_mode & S_IFMT), (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			 (unsigned long long)st.st_ino);
		grown = realloc(*lines, (*n + 1) * sizeof(char *));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		*lines = grown;
		(*lines)[*n] = strdup(line);
		if (!(*lines)[*n]) {
			r = -ENOMEM;
			break;
		}
		(*n)++;
		if (S_ISDIR(st.st_mode))
			r = snapshot_walk(base, child_rel, lines, n);
	}
	closedir(d);
	return r;
}

char *dir_snapshot(const char *dir)
{
	struct text t = {0};
	char **lines = NULL;
	size_t n = 0;
	int r;

	r = snapshot_walk(dir, "", &lines, &n);
	if (r == 0) {
		qsort(lines, n, sizeof(char *), line_compare);
		r = text_append(&t, "");
		for (size_t i = 0; r == 0 && i < n; i++)
			r = text_append(&t, lines[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	if (r < 0) {
		free(t.data);
		return NULL;
	}
	return t.data;
}

char *file_read_all(const char *path, size_t *ret_size)
{
	struct stat st;
	char *data;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		close(fd);
		return NULL;
	}
	n = read(fd, data, (size_t)st.st_size);
	close(fd);
	if (n < 0) {
		free(data);
		return NULL;
	}
	data[n] = '\0';
	if (ret_size)
		*ret_size = (size_t)n;
	return data;
}

long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int seqpacket_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

ssize_t seqpacket_recv(int fd, void *buf, size_t size, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, size, MSG_TRUNC | MSG_DONTWAIT);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	return n;
}

int seqpacket_call(int fd, const struct mid_request *req, struct mid_response *resp, int timeout_ms)
{
	uint8_t *buf = malloc(MID_FRAME_MAX);
	ssize_t n;
	int r;

	if (!buf)
		return -ENOMEM;
	n = mid_request_encode(req, buf, MID_FRAME_MAX);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
		r = -errno;
		free(buf);
		return r ? r : -EIO;
	}
	n = seqpacket_recv(fd, buf, MID_FRAME_MAX, timeout_ms);
	if (n == 0)
		r = -ECONNRESET;
	else if (n < 0)
		r = (int)n;
	else if (n > MID_FRAME_MAX)
		r = -EMSGSIZE;
	else {
		r = mid_response_decode(buf, (size_t)n, resp);
		if (r == 0)
			r = resp->status;
	}
	free(buf);
	return r;
}

/* Appends target to t with the digits of "socket:[N]" and "pipe:[N]"
 * dropped. */
static int target_append(struct text *t, const char *target)
{
	char line[4200];
	const char *bracket = strchr(target, '[');

	if ((strncmp(target, "socket:", 7) == 0 || strncmp(target, "pipe:", 5) == 0) && bracket)
		snprintf(line, sizeof(line), "%.*s\n", (int)(bracket - target), target);
	else
		snprintf(line, sizeof(line), "%s\n", target);
	return text_append(t, line);
}

char *descriptor_list(void)
{
	struct text t = {0};
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int own, r = text_append(&t, "");

	if (!d) {
		free(t.data);
		return NULL;
	}
	own = dirfd(d);
	while (r == 0 && (de = readdir(d))) {
		char link[320], target[4096];
		ssize_t n;

		if (de->d_name[0] == '.' || atoi(de->d_name) == own)
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		r = target_append(&t, target);
	}
	closedir(d);
	if (r < 0) {
		free(t.data);
		return NULL;
	}
	return t.data;
}

char *child_descriptor_list(void)
{
	struct text t = {0};
	char line[4400];
	int pipefd[2], status;
	FILE *f;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return NULL;
	}
	if (pid == 0) {
		char *const argv[] = {"ls", "-l", "/proc/self/fd", NULL};
		char *const envp[] = {NULL};

		/* dup2 clears close-on-exec on the copy only. */
		dup2(pipefd[1], STDOUT_FILENO);
		execve("/bin/ls", argv, envp);
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	if (!f) {
		close(pipefd[0]);
		waitpid(pid, &status, 0);
		return NULL;
	}
	text_append(&t, "");
	while (fgets(line, sizeof(line), f)) {
		char *arrow = strstr(line, " -> ");
		char *target;

		if (!arrow)
			continue;
		target = arrow + 4;
		target[strcspn(target, "\n")] = '\0';
		/* ls's own directory descriptor and its stdout pipe. */
		if (strncmp(target, "/proc/", 6) == 0 || strstr(line, " 1 -> "))
			continue;
		target_append(&t, target);
	}
	fclose(f);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(t.data);
		return NULL;
	}
	return t.data;
}

void child_signals_reset(void)
{
	const int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT};

	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		signal(signals[i], SIG_DFL);
}

const char *bytes_escape(const char *s, char *out, size_t out_size)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < out_size; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", *p);
	}
	out[o < out_size ? o : out_size - 1] = '\0';
	return out;
}

/* Test harness around a real mid-agentd process. */
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

extern char **environ;

static int write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

/* The agent must not inherit the test's preloaded wrappers. */
static void clean_child_env(void)
{
	harness_unwrap();
	unsetenv("NSS_WRAPPER_PASSWD");
	unsetenv("NSS_WRAPPER_GROUP");
	unsetenv("NSS_WRAPPER_MODULE_SO_PATH");
	unsetenv("NSS_WRAPPER_MODULE_FN_PREFIX");
	setenv("MID_LOG_STDERR", "1", 1);
}

static int wait_ready(struct harness *h)
{
	struct mid_request req = {.type = MID_REQ_STATUS};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r = -ETIMEDOUT;

	if (!resp)
		return -ENOMEM;
	/* Up to 20 s: a loaded machine running tests in parallel can make a
	 * start after a crash (WAL recovery, integrity check) slow. */
	for (int i = 0; i < 2000; i++) {
		int status;

		if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
			char cmd[400];

			h->pid = 0;
			r = -ECHILD;
			fprintf(stderr, "# mid-agentd exited during start-up (status %d); its log:\n",
				status);
			snprintf(cmd, sizeof(cmd), "tail -n 5 '%s/agent.log' | sed 's/^/# /' >&2",
				 h->dir);
			if (system(cmd) != 0)
				fprintf(stderr, "# (no log)\n");
			break;
		}
		if (mid_client_call(h->socket_path, 1000, &req, resp) == 0 &&
		    resp->status == MID_OK) {
			r = 0;
			break;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	free(resp);
	return r;
}

int harness_restart_agent(struct harness *h)
{
	char agent[512], state[300], runtime[300], log_path[300];
	const char *builddir = getenv("MID_BUILDDIR");
	pid_t pid;

	snprintf(agent, sizeof(agent), "%s/agentd/mid-agentd", builddir ? builddir : ".");
	snprintf(state, sizeof(state), "%s/state", h->dir);
	snprintf(runtime, sizeof(runtime), "%s/run", h->dir);
	snprintf(log_path, sizeof(log_path), "%s/agent.log", h->dir);

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		clean_child_env();
		execl(agent, agent, "--config", h->config_path, "--socket", h->socket_path,
		      "--state-dir", state, "--runtime-dir", runtime, (char *)NULL);
		_exit(127);
	}
	h->pid = pid;
	return wait_ready(h);
}

int harness_start(struct harness *h, const char *dir, const char *config_text)
{
	int r;

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s", dir ? dir : "/tmp/mid-test.XXXXXX");
	if (!dir && !mkdtemp(h->dir))
		return -errno;
	snprintf(h->socket_path, sizeof(h->socket_path), "%s/agent.sock", h->dir);
	snprintf(h->cache_path, sizeof(h->cache_path), "%s/run/%s", h->dir, MID_CACHE_FILE_NAME);
	snprintf(h->config_path, sizeof(h->config_path), "%s/mid.conf", h->dir);

	r = write_file(h->config_path, config_text, 0600);
	if (r < 0)
		return r;
	return harness_restart_agent(h);
}

int harness_stop_agent(struct harness *h)
{
	int status;

	if (h->pid <= 0)
		return 0;
	kill(h->pid, SIGTERM);
	if (waitpid(h->pid, &status, 0) < 0)
		return -errno;
	h->pid = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
}

void harness_stop(struct harness *h)
{
	char cmd[400];

	(void)harness_stop_agent(h);
	/* rm must not run with the test's pam_wrapper preloaded. */
	unsetenv("LD_PRELOAD");
	if (h->dir[0] && !getenv("MID_KEEP_TEST_DIR")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# failed to remove %s\n", h->dir);
	}
}

int harness_call(struct harness *h, const struct mid_request *req, struct mid_response *resp)
{
	int r = mid_client_call(h->socket_path, 5000, req, resp);

	return r < 0 ? r : resp->status;
}

int harness_issue(struct harness *h, const char *account, const char *class_name, uint32_t ttl,
		  char credential[MID_CREDENTIAL_MAX + 1], struct mid_lease_info *ret_lease)
{
	struct mid_request req = {.type = MID_REQ_ISSUE, .ttl = ttl};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	if (!resp)
		return -ENOMEM;
	if (account)
		snprintf(req.account, sizeof(req.account), "%s", account);
	if (class_name)
		snprintf(req.class_name, sizeof(req.class_name), "%s", class_name);
	r = harness_call(h, &req, resp);
	if (r == MID_OK) {
		if (credential)
			memcpy(credential, resp->credential, sizeof(resp->credential));
		if (ret_lease)
			*ret_lease = resp->lease;
	}
	free(resp);
	return r;
}

int harness_revoke(struct harness *h, const char *lease)
{
	struct mid_request req = {.type = MID_REQ_REVOKE};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	if (!resp)
		return -ENOMEM;
	snprintf(req.lease, sizeof(req.lease), "%s", lease);
	r = harness_call(h, &req, resp);
	free(resp);
	return r;
}

/* ---- tests that run a PAM stack under pam_wrapper ---- */

const char *harness_module_path(void)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/pam_mid/.libs/pam_mid.so", getenv("MID_BUILDDIR"));
	return path;
}

void harness_service_write(const char *dir, const char *name, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

void harness_pam_wrapper(char **argv, const char *template, const char *dir_env, char *test_dir,
			 size_t size, void (*services_write)(const char *services_dir))
{
	char services[300], preload[600];
	const char *asan = getenv("MID_ASAN_LIB"), *dir = getenv(dir_env);

	if (getenv("PAM_WRAPPER") && dir) {
		snprintf(test_dir, size, "%s", dir);
		return;
	}
	if (asan && !*asan)
		asan = NULL;

	snprintf(test_dir, size, "%s", template);
	if (!mkdtemp(test_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(services, sizeof(services), "%s/pam.d", test_dir);
	if (mkdir(services, 0755) < 0) {
		perror(services);
		exit(1);
	}
	services_write(services);

	snprintf(preload, sizeof(preload), "%s%slibpam_wrapper.so", asan ? asan : "",
		 asan ? ":" : "");
	setenv("LD_PRELOAD", preload, 1);
	setenv("PAM_WRAPPER", "1", 1);
	setenv("PAM_WRAPPER_SERVICE_DIR", services, 1);
	setenv(dir_env, test_dir, 1);
	/* Under valgrind /proc/self/exe is valgrind itself, so a path in
	 * argv[0] comes first. */
	execv(strchr(argv[0], '/') ? argv[0] : "/proc/self/exe", argv);
	perror("execv");
	exit(1);
}

void harness_unwrap(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("PAM_WRAPPER");
	unsetenv("PAM_WRAPPER_SERVICE_DIR");
}

int harness_finish(struct harness *h)
{
	char path[400], line[1024];
	FILE *f;
	int r;

	/* harness_stop runs rm, which must not load pam_wrapper. */
	harness_unwrap();
	r = harness_stop_agent(h);
	if (r != 0) {
		printf("# mid-agentd exited with status %d\n", r);
		snprintf(path, sizeof(path), "%s/agent.log", h->dir);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			printf("# agent: %s", line);
		if (f)
			fclose(f);
	}
	harness_stop(h);
	return r;
}

void harness_dir_remove(const char *test_dir)
{
	char cmd[400];

	if (getenv("MID_KEEP_TEST_DIR"))
		return;
	/* rm must not load pam_wrapper. */
	harness_unwrap();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# failed to remove %s\n", test_dir);
}

/* ---- running programs ---- */

static int output_open(const char *dir, const char *name)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

static int output_read(int fd, char *buf, size_t size)
{
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int harness_become(const struct harness_identity *identity)
{
	if (!identity)
		return 0;
	if (setgroups(identity->n_groups, identity->groups) < 0 || setgid(identity->gid) < 0 ||
	    setuid(identity->uid) < 0)
		return -1;
	return 0;
}

int harness_program_run(struct harness_command *c, const char *dir,
			const struct harness_identity *identity, char *const argv[])
{
	int out = output_open(dir, "stdout"), err = output_open(dir, "stderr"), status, r = 0;
	pid_t pid;

	c->status = -1;
	c->out[0] = c->err[0] = '\0';
	if (out < 0 || err < 0) {
		r = out < 0 ? out : err;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0) {
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		harness_unwrap();
		unsetenv("PAM_RHOST");
		if (harness_become(identity) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid) {
		r = -errno;
		goto out;
	}
	c->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r = output_read(out, c->out, sizeof(c->out));
	if (r == 0)
		r = output_read(err, c->err, sizeof(c->err));
out:
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	return r;
}

int harness_midctl(struct harness_command *c, const struct harness *h, const char *dir,
		   const struct harness_identity *identity, const char *const *leading, va_list ap)
{
	char path[400], *argv[24];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/midctl/midctl", getenv("MID_BUILDDIR"));
	argv[n++] = path;
	argv[n++] = (char *)"--socket";
	argv[n++] = (char *)h->socket_path;
	for (size_t i = 0; leading && leading[i]; i++) {
		if (n == MID_ELEMENTSOF(argv) - 1)
			return -E2BIG;
		argv[n++] = (char *)leading[i];
	}
	for (char *arg = va_arg(ap, char *); arg; arg = va_arg(ap, char *)) {
		if (n == MID_ELEMENTSOF(argv) - 1)
			return -E2BIG;
		argv[n++] = arg;
	}
	argv[n] = NULL;
	return harness_program_run(c, dir, identity, argv);
}

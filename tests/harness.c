/* Test harness around a real mid-agentd process. */
#include "harness.h"

#include <fcntl.h>
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
	unsetenv("LD_PRELOAD");
	unsetenv("PAM_WRAPPER");
	unsetenv("PAM_WRAPPER_SERVICE_DIR");
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

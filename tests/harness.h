/* Test harness: runs a real mid-agentd on a private socket, state dir and
 * runtime dir under a temporary directory, and talks to it. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "protocol.h"
#include "token.h"

struct harness {
	char dir[256];
	char socket_path[300];
	char cache_path[300];
	char config_path[300];
	pid_t pid;
};

/* Writes config_text as the policy and starts the agent in dir (made
 * with mkdtemp when NULL); returns 0 once it answers a status request,
 * or -errno. */
int harness_start(struct harness *h, const char *dir, const char *config_text);
/* Stops the agent (SIGTERM, then waits) without removing the directory. */
int harness_stop_agent(struct harness *h);
/* Restarts a stopped agent on the same state. */
int harness_restart_agent(struct harness *h);
/* Stops the agent and removes the directory. */
void harness_stop(struct harness *h);

/* Issues a credential for account (or class when class_name is set).
 * Returns the reply's status (enum mid_status) or -errno. */
int harness_issue(struct harness *h, const char *account, const char *class_name, uint32_t ttl,
		  char credential[MID_CREDENTIAL_MAX + 1], struct mid_lease_info *ret_lease);
int harness_revoke(struct harness *h, const char *lease);
/* Any request; returns the reply's status or -errno. */
int harness_call(struct harness *h, const struct mid_request *req, struct mid_response *resp);

/* ---- tests that run a PAM stack under pam_wrapper ---- */

/* The pam_mid.so of the build tree that MID_BUILDDIR names. */
const char *harness_module_path(void);
/* Writes the PAM service file dir/name. Exits when it cannot. */
MID_PRINTF(3, 4) void harness_service_write(const char *dir, const char *name, const char *fmt,
					    ...);
/* Puts this program under pam_wrapper and writes its test directory to
 * test_dir. Unless the variable dir_env names the directory already, it
 * makes one from template with a pam.d that services_write fills, and
 * re-executes the program, so it does not return. */
void harness_pam_wrapper(char **argv, const char *template, const char *dir_env, char *test_dir,
			 size_t size, void (*services_write)(const char *services_dir));
/* Takes pam_wrapper out of the environment, for programs that must not
 * load it. */
void harness_unwrap(void);
/* Stops the agent, printing its exit status and log as TAP comments when
 * it did not exit cleanly (as after a sanitizer finding), and removes its
 * directory. Returns the agent's exit status. */
int harness_finish(struct harness *h);
/* Removes the test directory, unless MID_KEEP_TEST_DIR is set. */
void harness_dir_remove(const char *test_dir);

/* ---- running programs ---- */

#define HARNESS_OUTPUT_MAX 8192

struct harness_identity {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
};

/* The outcome of a program run by harness_program_run. */
struct harness_command {
	int status; /* exit status, or -1 when the program did not exit */
	char out[HARNESS_OUTPUT_MAX];
	char err[HARNESS_OUTPUT_MAX];
};

/* Takes on identity's groups, gid and uid, in a child. Returns -1 when
 * that failed. NULL keeps this process's identity. */
int harness_become(const struct harness_identity *identity);
/* Runs argv as identity (NULL: as this process), without pam_wrapper and
 * PAM_RHOST in its environment, and collects its exit status and output
 * through files in dir. Returns 0 or -errno. */
int harness_program_run(struct harness_command *c, const char *dir,
			const struct harness_identity *identity, char *const argv[]);
/* Runs midctl --socket with h's socket, then the arguments of leading (a
 * NULL-terminated array, or NULL), then those of ap up to a NULL. Returns
 * 0, -E2BIG for more than 20 arguments, or another -errno. */
int harness_midctl(struct harness_command *c, const struct harness *h, const char *dir,
		   const struct harness_identity *identity, const char *const *leading, va_list ap);

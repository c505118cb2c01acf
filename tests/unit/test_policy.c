/* Unit tests of agentd/policy.c: loading mid.conf and the messages for
 * each kind of mistake in it. Every test writes its policy to a file in a
 * private temporary directory and loads it from there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

static char temp_dir[PATH_MAX];

struct fixture {
	char path[PATH_MAX];
	struct policy *policy;
	struct policy_errors errors;
	int r;
};

static int make_temp_dir(void **state)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = "/tmp";
	if (snprintf(temp_dir, sizeof(temp_dir), "%s/mid-test-policy-XXXXXX", base) >=
	    (int)sizeof(temp_dir))
		return -1;
	return mkdtemp(temp_dir) ? 0 : -1;
}

static int remove_temp_dir(void **state)
{
	return rmdir(temp_dir);
}

static int fixture_new(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int fixture_free(void **state)
{
	struct fixture *f = *state;

	policy_free(f->policy);
	policy_errors_clear(&f->errors);
	if (f->path[0])
		unlink(f->path);
	free(f);
	return 0;
}

/* Writes text to the file `name` in the temporary directory and loads it,
 * printing every error as a TAP comment. */
static void load_text(struct fixture *f, const char *name, const char *text)
{
	FILE *file;

	assert_true(snprintf(f->path, sizeof(f->path), "%s/%s", temp_dir, name) <
		    (int)sizeof(f->path));
	file = fopen(f->path, "we");
	assert_non_null(file);
	assert_true(fputs(text, file) >= 0);
	assert_int_equal(fclose(file), 0);

	f->r = policy_load(f->path, &f->policy, &f->errors);
	for (size_t i = 0; i < f->errors.n; i++)
		print_message("# %s\n", f->errors.lines[i]);
}

/* Checks that error number `index` is "PATH:LINE: ..." and contains
 * phrase. */
static void assert_error(const struct fixture *f, size_t index, int line, const char *phrase)
{
	char prefix[PATH_MAX + 32], start[PATH_MAX + 32];
	const char *message;

	assert_true(index < f->errors.n);
	message = f->errors.lines[index];

	snprintf(prefix, sizeof(prefix), "%s:%d: ", f->path, line);
	snprintf(start, sizeof(start), "%.*s", (int)strlen(prefix), message);
	assert_string_equal(start, prefix);
	assert_non_null(strstr(message, phrase));
}

/* Loads text, which must fail with exactly one error at line. */
static void check_one_error(struct fixture *f, const char *text, int line, const char *phrase)
{
	load_text(f, "mid.conf", text);

	assert_int_equal(f->r, -EINVAL);
	assert_null(f->policy);
	assert_error(f, 0, line, phrase);
	assert_int_equal(f->errors.n, 1);
}

static const char valid_policy[] =
	"accounts = (\n"
	"\t{\n"
	"\t\tname = \"deploy\";\n"
	"\t\tttl = \"30m\";\n"
	"\t\tmax_ttl = \"2h\";\n"
	"\t\tmax_uses = 5;\n"
	"\t\trequesters = { users = [\"jenkins\"]; groups = [\"deployers\", \"ops\"]; };\n"
	"\t},\n"
	"\t{ name = \"backup\"; }\n"
	");\n"
	"classes = (\n"
	"\t{\n"
	"\t\tname = \"ci\";\n"
	"\t\tprefix = \"ci-\";\n"
	"\t\tuid_min = 60000;\n"
	"\t\tuid_max = 60999;\n"
	"\t\tgroup = \"mid-ci\";\n"
	"\t\tgid = 60000;\n"
	"\t\tttl = \"1h30m\";\n"
	"\t\tmax_ttl = \"8h\";\n"
	"\t\tshell = \"/bin/bash\";\n"
	"\t\thome = \"/var/lib/ci\";\n"
	"\t\tgecos = \"CI runner\";\n"
	"\t},\n"
	"\t{\n"
	"\t\tname = \"tmp\";\n"
	"\t\tprefix = \"tmp-\";\n"
	"\t\tuid_min = 61000;\n"
	"\t\tuid_max = 61999;\n"
	"\t\tgroup = \"mid-tmp\";\n"
	"\t\tgid = 61000;\n"
	"\t}\n"
	");\n"
	"verifiers = { users = [\"sshd-helper\"]; groups = [\"wheel\"]; };\n";

static void policy_valid_accounts(void **state)
{
	struct fixture *f = *state;
	const struct rule *deploy, *backup;

	load_text(f, "mid.conf", valid_policy);
	assert_int_equal(f->r, 0);
	assert_int_equal(f->errors.n, 0);
	assert_non_null(f->policy);
	assert_string_equal(f->policy->path, f->path);
	assert_int_equal(f->policy->n_accounts, 2);

	deploy = &f->policy->accounts[0];
	assert_string_equal(deploy->name, "deploy");
	assert_false(deploy->ephemeral);
	assert_int_equal(deploy->ttl, 30 * 60);
	assert_int_equal(deploy->max_ttl, 2 * 3600);
	assert_int_equal(deploy->max_uses, 5);
	assert_int_equal(deploy->line, 2);
	assert_int_equal(deploy->requesters.n_users, 1);
	assert_string_equal(deploy->requesters.users[0], "jenkins");
	assert_int_equal(deploy->requesters.n_groups, 2);
	assert_string_equal(deploy->requesters.groups[0], "deployers");
	assert_string_equal(deploy->requesters.groups[1], "ops");

	backup = &f->policy->accounts[1];
	assert_string_equal(backup->name, "backup");
	assert_int_equal(backup->ttl, 15 * 60);
	assert_int_equal(backup->max_ttl, 3600);
	assert_int_equal(backup->max_uses, 0);
	assert_int_equal(backup->line, 9);
	assert_int_equal(backup->requesters.n_users, 0);
	assert_int_equal(backup->requesters.n_groups, 0);

	assert_ptr_equal(policy_find_account(f->policy, "backup"), backup);
	assert_null(policy_find_account(f->policy, "nobody"));
}

static void policy_valid_classes(void **state)
{
	struct fixture *f = *state;
	const struct rule *ci, *tmp;

	load_text(f, "mid.conf", valid_policy);
	assert_int_equal(f->r, 0);
	assert_non_null(f->policy);
	assert_int_equal(f->policy->n_classes, 2);

	ci = &f->policy->classes[0];
	assert_string_equal(ci->name, "ci");
	assert_true(ci->ephemeral);
	assert_string_equal(ci->prefix, "ci-");
	assert_int_equal(ci->uid_min, 60000);
	assert_int_equal(ci->uid_max, 60999);
	assert_string_equal(ci->group, "mid-ci");
	assert_int_equal(ci->gid, 60000);
	assert_int_equal(ci->ttl, 5400);
	assert_int_equal(ci->max_ttl, 8 * 3600);
	assert_string_equal(ci->shell, "/bin/bash");
	assert_string_equal(ci->home_base, "/var/lib/ci");
	assert_string_equal(ci->gecos, "CI runner");
	assert_int_equal(ci->line, 12);

	tmp = &f->policy->classes[1];
	assert_string_equal(tmp->name, "tmp");
	assert_int_equal(tmp->ttl, 15 * 60);
	assert_int_equal(tmp->max_ttl, 3600);
	assert_string_equal(tmp->shell, "/bin/sh");
	assert_string_equal(tmp->home_base, "/home");
	assert_string_equal(tmp->gecos, "mid ephemeral account");

	assert_ptr_equal(policy_find_class(f->policy, "tmp"), tmp);
	assert_null(policy_find_class(f->policy, "build"));
	assert_ptr_equal(policy_find_class_of(f->policy, "ci-0123abcd"), ci);
	assert_ptr_equal(policy_find_class_of(f->policy, "tmp-0123abcd"), tmp);
	assert_null(policy_find_class_of(f->policy, "deploy"));
}

static void policy_valid_verifiers(void **state)
{
	struct fixture *f = *state;

	load_text(f, "mid.conf", valid_policy);
	assert_int_equal(f->r, 0);
	assert_non_null(f->policy);
	assert_int_equal(f->policy->verifiers.n_users, 1);
	assert_string_equal(f->policy->verifiers.users[0], "sshd-helper");
	assert_int_equal(f->policy->verifiers.n_groups, 1);
	assert_string_equal(f->policy->verifiers.groups[0], "wheel");
}

static void policy_empty_file(void **state)
{
	struct fixture *f = *state;

	load_text(f, "mid.conf", "# nothing yet\n");
	assert_int_equal(f->r, 0);
	assert_int_equal(f->errors.n, 0);
	assert_non_null(f->policy);
	assert_int_equal(f->policy->n_accounts, 0);
	assert_int_equal(f->policy->n_classes, 0);
	assert_int_equal(f->policy->verifiers.n_users, 0);
}

/* A bare number is seconds, and without max_ttl a ttl above one hour
 * becomes its own maximum. */
static void policy_ttl_in_seconds(void **state)
{
	struct fixture *f = *state;

	load_text(f, "mid.conf", "accounts = ( { name = \"deploy\"; ttl = 7200; } );\n");
	assert_int_equal(f->r, 0);
	assert_non_null(f->policy);
	assert_int_equal(f->policy->accounts[0].ttl, 7200);
	assert_int_equal(f->policy->accounts[0].max_ttl, 7200);
}

static void policy_syntax_error(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{\n"
			"\t\tname = \"deploy\";\n"
			"\t\tttl = ;\n"
			"\t}\n"
			");\n",
			4, "syntax error");
}

static void policy_unknown_key(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{\n"
			"\t\tname = \"deploy\";\n"
			"\t\tcolour = \"blue\";\n"
			"\t}\n"
			");\n",
			4, "unknown setting \"colour\"");
}

/* Class-only settings are unknown in an account. */
static void policy_class_key_in_account(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{\n"
			"\t\tname = \"deploy\";\n"
			"\t\tprefix = \"d-\";\n"
			"\t}\n"
			");\n",
			4, "unknown setting \"prefix\"");
}

static void policy_unknown_top_level(void **state)
{
	check_one_error(*state, "\naccount = ();\n", 2, "unknown setting \"account\"");
}

static void policy_invalid_duration(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{\n"
			"\t\tname = \"deploy\";\n"
			"\t\tttl = \"10x\";\n"
			"\t}\n"
			");\n",
			4, "invalid ttl \"10x\"");
}

static void policy_duration_cases(void **state)
{
	static const struct {
		const char *value;
		const char *phrase;
	} cases[] = {
		{"\"1h30\"", "invalid max_ttl \"1h30\""},
		{"\"0s\"", "invalid max_ttl \"0s\""},
		{"\"\"", "invalid max_ttl \"\""},
		{"\"99999999999d\"", "invalid max_ttl \"99999999999d\""},
		{"0", "max_ttl must be positive, not 0"},
		{"-60", "max_ttl must be positive, not -60"},
		{"1.5", "max_ttl must be a duration"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < MID_ELEMENTSOF(cases); i++) {
		char text[256];

		snprintf(text, sizeof(text), "accounts = (\n\t{ name = \"deploy\";\n\t max_ttl = %s; }\n);\n",
			 cases[i].value);
		check_one_error(f, text, 3, cases[i].phrase);
		policy_errors_clear(&f->errors);
	}
}

static void policy_ttl_above_max_ttl(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{\n"
			"\t\tname = \"deploy\";\n"
			"\t\tttl = \"2h\";\n"
			"\t\tmax_ttl = \"1h\";\n"
			"\t}\n"
			");\n",
			2, "ttl is longer than max_ttl");
}

static void policy_class_without_uid_min(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t}\n"
			");\n",
			2, "class \"ci\" has no uid_min");
}

static void policy_class_without_uid_max(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t}\n"
			");\n",
			2, "class \"ci\" has no uid_max");
}

static void policy_class_without_gid(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t}\n"
			");\n",
			2, "class \"ci\" has no gid");
}

static void policy_class_without_prefix(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t}\n"
			");\n",
			2, "class \"ci\" needs a prefix");
}

/* A prefix leaves room for the 8 hex digits within MID_NAME_MAX. */
static void policy_class_prefix_too_long(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"abcdefghijklmnopqrstuvwxy\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t}\n"
			");\n",
			2, "needs a prefix of 1 to 24 name characters");
}

static void policy_class_without_group(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgid = 60000;\n"
			"\t}\n"
			");\n",
			2, "needs a valid primary group name");
}

static void policy_uid_min_above_uid_max(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 70000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t}\n"
			");\n",
			2, "uid_min 70000 is above uid_max 60999");
}

/* UIDs below 1000 belong to the system, so a class can never hand out
 * UID 0. */
static void policy_uid_min_below_1000(void **state)
{
	static const char *const values[] = {"0", "999", "-1"};
	struct fixture *f = *state;

	for (size_t i = 0; i < MID_ELEMENTSOF(values); i++) {
		char text[512], phrase[64];

		snprintf(text, sizeof(text),
			 "classes = (\n"
			 "\t{\n"
			 "\t\tname = \"ci\";\n"
			 "\t\tprefix = \"ci-\";\n"
			 "\t\tuid_min = %s;\n"
			 "\t\tuid_max = 60999;\n"
			 "\t\tgroup = \"mid-ci\";\n"
			 "\t\tgid = 60000;\n"
			 "\t}\n"
			 ");\n",
			 values[i]);
		snprintf(phrase, sizeof(phrase), "uid_min = %s is out of range; use 1000 to", values[i]);
		check_one_error(f, text, 5, phrase);
		policy_errors_clear(&f->errors);
	}
}

static void policy_gid_below_1000(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 0;\n"
			"\t}\n"
			");\n",
			8, "gid = 0 is out of range");
}

static void policy_uid_ranges_overlap(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{ name = \"ci\"; prefix = \"ci-\"; uid_min = 60000; uid_max = 60999;\n"
			"\t  group = \"mid-ci\"; gid = 60000; },\n"
			"\t{ name = \"build\"; prefix = \"build-\"; uid_min = 60999; uid_max = 61999;\n"
			"\t  group = \"mid-build\"; gid = 60001; }\n"
			");\n",
			4, "class \"build\": UID range overlaps class \"ci\"");
}

static void policy_prefixes_overlap(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{ name = \"ci\"; prefix = \"ci-x\"; uid_min = 60000; uid_max = 60999;\n"
			"\t  group = \"mid-ci\"; gid = 60000; },\n"
			"\t{ name = \"ci2\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999;\n"
			"\t  group = \"mid-ci2\"; gid = 60001; }\n"
			");\n",
			4, "class \"ci2\": prefix \"ci-\" overlaps class \"ci\"");
}

static void policy_duplicate_account(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{ name = \"deploy\"; },\n"
			"\t{ name = \"backup\"; },\n"
			"\t{ name = \"deploy\"; }\n"
			");\n",
			4, "account \"deploy\" is defined twice (first at line 2)");
}

static void policy_duplicate_class(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{ name = \"ci\"; prefix = \"ci-\"; uid_min = 60000; uid_max = 60999;\n"
			"\t  group = \"mid-ci\"; gid = 60000; },\n"
			"\t{ name = \"ci\"; prefix = \"build-\"; uid_min = 61000; uid_max = 61999;\n"
			"\t  group = \"mid-build\"; gid = 60001; }\n"
			");\n",
			4, "class \"ci\" is defined twice (first at line 2)");
}

/* The message points at the class, whose prefix the account takes. */
static void policy_account_takes_prefix(void **state)
{
	check_one_error(*state,
			"accounts = ( { name = \"ci-deploy\"; } );\n"
			"classes = (\n"
			"\t{ name = \"ci\"; prefix = \"ci-\"; uid_min = 60000; uid_max = 60999;\n"
			"\t  group = \"mid-ci\"; gid = 60000; }\n"
			");\n",
			3, "account \"ci-deploy\" starts with the prefix of class \"ci\"");
}

static void policy_relative_shell(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t\tshell = \"bin/sh\";\n"
			"\t}\n"
			");\n",
			2, "shell must be an absolute path");
}

static void policy_relative_home(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t\thome = \"home\";\n"
			"\t}\n"
			");\n",
			2, "home must be an absolute directory");
}

static void policy_gecos_colon(void **state)
{
	check_one_error(*state,
			"classes = (\n"
			"\t{\n"
			"\t\tname = \"ci\";\n"
			"\t\tprefix = \"ci-\";\n"
			"\t\tuid_min = 60000;\n"
			"\t\tuid_max = 60999;\n"
			"\t\tgroup = \"mid-ci\";\n"
			"\t\tgid = 60000;\n"
			"\t\tgecos = \"a:b\";\n"
			"\t}\n"
			");\n",
			2, "gecos must not contain ':'");
}

static void policy_invalid_account_name(void **state)
{
	check_one_error(*state, "accounts = (\n\t{ name = \"12345\"; }\n);\n", 2,
			"invalid account name \"12345\"");
}

static void policy_account_without_name(void **state)
{
	check_one_error(*state, "accounts = (\n\t{ ttl = \"1h\"; }\n);\n", 2,
			"account has no name");
}

static void policy_invalid_requester(void **state)
{
	check_one_error(*state,
			"accounts = (\n"
			"\t{\n"
			"\t\tname = \"deploy\";\n"
			"\t\trequesters = {\n"
			"\t\t\tusers = [\"-rf\"];\n"
			"\t\t};\n"
			"\t}\n"
			");\n",
			5, "invalid name in users: -rf");
}

static void policy_unknown_verifier_key(void **state)
{
	check_one_error(*state, "verifiers = {\n\tusers = [\"a\"];\n\thosts = [\"b\"];\n};\n", 3,
			"unknown setting \"hosts\" in verifiers");
}

static void policy_max_uses_negative(void **state)
{
	check_one_error(*state, "accounts = (\n\t{ name = \"deploy\";\n\t  max_uses = -1; }\n);\n",
			3, "max_uses = -1 is out of range");
}

/* Three mistakes in three different rules give three messages, in file
 * order. */
static void policy_three_errors(void **state)
{
	struct fixture *f = *state;

	load_text(f, "mid.conf",
		  "accounts = (\n"
		  "\t{\n"
		  "\t\tname = \"deploy\";\n"
		  "\t\tttl = \"soon\";\n"
		  "\t},\n"
		  "\t{\n"
		  "\t\tname = \"backup\";\n"
		  "\t\tcolour = \"blue\";\n"
		  "\t}\n"
		  ");\n"
		  "classes = (\n"
		  "\t{\n"
		  "\t\tname = \"ci\";\n"
		  "\t\tprefix = \"ci-\";\n"
		  "\t\tuid_min = 60000;\n"
		  "\t\tuid_max = 60999;\n"
		  "\t\tgroup = \"mid-ci\";\n"
		  "\t\tgid = 60000;\n"
		  "\t\tshell = \"sh\";\n"
		  "\t}\n"
		  ");\n");

	assert_int_equal(f->r, -EINVAL);
	assert_null(f->policy);
	assert_int_equal(f->errors.n, 3);
	assert_error(f, 0, 4, "invalid ttl \"soon\"");
	assert_error(f, 1, 8, "unknown setting \"colour\"");
	assert_error(f, 2, 12, "shell must be an absolute path");
}

static void policy_missing_file(void **state)
{
	struct fixture *f = *state;
	char expected[PATH_MAX + 64];

	assert_true(snprintf(f->path, sizeof(f->path), "%s/absent.conf", temp_dir) <
		    (int)sizeof(f->path));
	f->r = policy_load(f->path, &f->policy, &f->errors);

	assert_int_equal(f->r, -EINVAL);
	assert_null(f->policy);
	assert_int_equal(f->errors.n, 1);
	snprintf(expected, sizeof(expected), "%s: cannot read file: %s", f->path, strerror(ENOENT));
	assert_string_equal(f->errors.lines[0], expected);
}

#define POLICY_TEST(name) cmocka_unit_test_setup_teardown(name, fixture_new, fixture_free)

int main(void)
{
	const struct CMUnitTest tests[] = {
		POLICY_TEST(policy_valid_accounts),
		POLICY_TEST(policy_valid_classes),
		POLICY_TEST(policy_valid_verifiers),
		POLICY_TEST(policy_empty_file),
		POLICY_TEST(policy_ttl_in_seconds),
		POLICY_TEST(policy_syntax_error),
		POLICY_TEST(policy_unknown_key),
		POLICY_TEST(policy_class_key_in_account),
		POLICY_TEST(policy_unknown_top_level),
		POLICY_TEST(policy_invalid_duration),
		POLICY_TEST(policy_duration_cases),
		POLICY_TEST(policy_ttl_above_max_ttl),
		POLICY_TEST(policy_class_without_uid_min),
		POLICY_TEST(policy_class_without_uid_max),
		POLICY_TEST(policy_class_without_gid),
		POLICY_TEST(policy_class_without_prefix),
		POLICY_TEST(policy_class_prefix_too_long),
		POLICY_TEST(policy_class_without_group),
		POLICY_TEST(policy_uid_min_above_uid_max),
		POLICY_TEST(policy_uid_min_below_1000),
		POLICY_TEST(policy_gid_below_1000),
		POLICY_TEST(policy_uid_ranges_overlap),
		POLICY_TEST(policy_prefixes_overlap),
		POLICY_TEST(policy_duplicate_account),
		POLICY_TEST(policy_duplicate_class),
		POLICY_TEST(policy_account_takes_prefix),
		POLICY_TEST(policy_relative_shell),
		POLICY_TEST(policy_relative_home),
		POLICY_TEST(policy_gecos_colon),
		POLICY_TEST(policy_invalid_account_name),
		POLICY_TEST(policy_account_without_name),
		POLICY_TEST(policy_invalid_requester),
		POLICY_TEST(policy_unknown_verifier_key),
		POLICY_TEST(policy_max_uses_negative),
		POLICY_TEST(policy_three_errors),
		POLICY_TEST(policy_missing_file),
	};

	return cmocka_run_group_tests_name("policy", tests, make_temp_dir, remove_temp_dir);
}

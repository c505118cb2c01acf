/* Loading mid.conf with libconfig. Every problem found is reported with
 * its file and line, so --check-config shows them all at once. */
#include "policy.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "names.h"
#include "netaddr.h"
#include "timewindow.h"

#define DEFAULT_TTL (15 * 60)
#define DEFAULT_MAX_TTL (60 * 60)
#define DEFAULT_SHELL "/bin/sh"
#define DEFAULT_HOME_BASE "/home"
#define DEFAULT_LOCKOUT_FAILURES 5
#define DEFAULT_LOCKOUT_WINDOW (15 * 60)
#define DEFAULT_LOCKOUT_DURATION (15 * 60)
#define DEFAULT_REQUEST_TTL (60 * 60)
#define DEFAULT_GRACE 10
#define DEFAULT_QUARANTINE (24 * 60 * 60)
#define MAX_LIST 64 /* entries in one list setting */

struct loader {
	const char *path;
	struct policy_errors *errors;
};

MID_PRINTF(3, 4)
static void loader_error(struct loader *l, const config_setting_t *s, const char *fmt, ...)
{
	char text[512], *line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	if (asprintf(&line, "%s:%d: %s", l->path, s ? config_setting_source_line(s) : 0, text) < 0)
		return;
	char **grown = realloc(l->errors->lines, (l->errors->n + 1) * sizeof(char *));
	if (!grown) {
		free(line);
		return;
	}
	l->errors->lines = grown;
	l->errors->lines[l->errors->n++] = line;
}

static int get_principals(struct loader *l, const config_setting_t *parent, const char *key,
			  struct principals *ret);
static int get_string(struct loader *l, const config_setting_t *group, const char *key,
		      const char *fallback, char **ret);
static int get_uint(struct loader *l, const config_setting_t *group, const char *key,
		    long long min, long long max, long long fallback, long long *ret);
static int get_duration(struct loader *l, const config_setting_t *group, const char *key,
			uint64_t fallback, uint64_t *ret);

static const char *const rule_keys[] = {
	"name", "ttl", "max_ttl", "max_uses", "requesters", "verifiers", "renew", "services",
	"sources", "hours", "timezone", "approval", "lockout", "max_sessions", "on_expiry",
	"warn_before", "grace",
	/* classes only */
	"prefix", "uid_min", "uid_max", "group", "gid", "shell", "home", "gecos", "skeleton",
	"create_home", "quarantine",
};
#define ACCOUNT_KEYS 17

static void check_unknown_keys(struct loader *l, const config_setting_t *group, size_t n_known)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *child = config_setting_get_elem(group, (unsigned)i);
		const char *key = config_setting_name(child);
		bool known = false;

		for (size_t k = 0; k < n_known && !known; k++)
			known = key && strcmp(key, rule_keys[k]) == 0;
		if (!known)
			loader_error(l, child, "unknown setting \"%s\"; check the spelling in mid.conf(5)",
				     key ? key : "?");
	}
}

static int get_duration(struct loader *l, const config_setting_t *group, const char *key,
			uint64_t fallback, uint64_t *ret)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	const char *text;
	int r;

	*ret = fallback;
	if (!s)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_INT) {
		int v = config_setting_get_int(s);

		if (v <= 0) {
			loader_error(l, s, "%s must be positive, not %d", key, v);
			return -EINVAL;
		}
		*ret = (uint64_t)v;
		return 0;
	}
	text = config_setting_get_string(s);
	if (!text) {
		loader_error(l, s, "%s must be a duration such as \"15m\", \"8h\" or \"2d\"", key);
		return -EINVAL;
	}
	r = duration_parse(text, ret);
	if (r < 0 || *ret == 0) {
		loader_error(l, s, "invalid %s \"%s\": write a duration such as \"30s\", \"15m\", \"8h\" or \"2d\"",
			     key, text);
		return -EINVAL;
	}
	return 0;
}

static int get_uint(struct loader *l, const config_setting_t *group, const char *key,
		    long long min, long long max, long long fallback, long long *ret)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	long long v;

	*ret = fallback;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
		loader_error(l, s, "%s must be a whole number", key);
		return -EINVAL;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		loader_error(l, s, "%s = %lld is out of range; use %lld to %lld", key, v, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int get_string(struct loader *l, const config_setting_t *group, const char *key,
		      const char *fallback, char **ret)
{
	const config_setting_t *s = config_setting_get_member(group, key);
	const char *text = fallback;

	*ret = NULL;
	if (s) {
		text = config_setting_get_string(s);
		if (!text) {
			loader_error(l, s, "%s must be a string in double quotes", key);
			return -EINVAL;
		}
	}
	if (!text)
		return 0;
	*ret = strdup(text);
	return *ret ? 0 : -ENOMEM;
}

static int get_name_list(struct loader *l, const config_setting_t *parent, const char *key,
			 char ***ret, size_t *ret_n)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	int n, failed = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!s)
		return 0;
	if (!config_setting_is_aggregate(s)) {
		loader_error(l, s, "%s must be a list of names, such as [\"ci\", \"deploy\"]", key);
		return -EINVAL;
	}
	n = config_setting_length(s);
	*ret = calloc((size_t)n + 1, sizeof(char *));
	if (!*ret)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_get_string(e);

		if (!name || !name_is_valid(name)) {
			loader_error(l, e, "invalid name in %s: %s", key,
				     name ? name : "(not a string)");
			failed = 1;
			continue;
		}
		(*ret)[(*ret_n)++] = strdup(name);
		if (!(*ret)[*ret_n - 1])
			return -ENOMEM;
	}
	return failed ? -EINVAL : 0;
}

static int get_bool(struct loader *l, const config_setting_t *group, const char *key,
		    bool fallback, bool *ret)
{
	const config_setting_t *s = config_setting_get_member(group, key);

	*ret = fallback;
	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		loader_error(l, s, "%s must be true or false", key);
		return -EINVAL;
	}
	*ret = config_setting_get_bool(s);
	return 0;
}

/* Reads a list of strings; each is checked by `valid`, whose error text
 * names what a valid entry looks like. */
static int get_string_list(struct loader *l, const config_setting_t *parent, const char *key,
			   bool (*valid)(const char *), const char *expected, char ***ret,
			   size_t *ret_n)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	int n, failed = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!s)
		return 0;
	if (!config_setting_is_aggregate(s)) {
		loader_error(l, s, "%s must be a list such as [\"%s\"]", key, expected);
		return -EINVAL;
	}
	n = config_setting_length(s);
	if (n > MAX_LIST) {
		loader_error(l, s, "%s has %d entries; at most %d are allowed", key, n, MAX_LIST);
		return -EINVAL;
	}
	*ret = calloc((size_t)n + 1, sizeof(char *));
	if (!*ret)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *text = config_setting_get_string(e);

		if (!text || !valid(text)) {
			loader_error(l, e, "invalid entry in %s: %s; expected something like \"%s\"",
				     key, text ? text : "(not a string)", expected);
			failed = 1;
			continue;
		}
		(*ret)[*ret_n] = strdup(text);
		if (!(*ret)[*ret_n])
			return -ENOMEM;
		(*ret_n)++;
	}
	return failed ? -EINVAL : 0;
}

static void string_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static bool service_is_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > MID_SERVICE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

static bool source_is_valid(const char *s)
{
	struct netaddr n;

	return netaddr_parse(s, &n) == 0;
}

static bool hours_is_valid(const char *s)
{
	struct time_window w;

	return time_window_parse(s, &w) == 0;
}

static bool duration_is_valid(const char *s)
{
	uint64_t v;

	return duration_parse(s, &v) == 0 && v > 0;
}

static int get_timezone(struct loader *l, const config_setting_t *group, char **ret)
{
	const config_setting_t *s = config_setting_get_member(group, "timezone");
	struct tm tm;
	int r;

	r = get_string(l, group, "timezone", NULL, ret);
	if (r < 0 || !*ret)
		return r;
	if (time_local(0, *ret, &tm) < 0) {
		loader_error(l, s, "unknown time zone \"%s\"; use a name from /usr/share/zoneinfo such as \"Europe/Berlin\"",
			     *ret);
		return -EINVAL;
	}
	return 0;
}

static int get_lockout(struct loader *l, const config_setting_t *parent,
		       const struct lockout_rule *fallback, struct lockout_rule *ret)
{
	const config_setting_t *s = config_setting_get_member(parent, "lockout");
	long long failures;
	int failed = 0;

	*ret = *fallback;
	if (!s)
		return 0;
	if (!config_setting_is_group(s)) {
		loader_error(l, s, "lockout must be a group: lockout = { failures = 5; window = \"15m\"; duration = \"15m\"; };");
		return -EINVAL;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *k = config_setting_name(e);

		if (!k || (strcmp(k, "failures") && strcmp(k, "window") && strcmp(k, "duration"))) {
			loader_error(l, e, "unknown setting \"%s\" in lockout; use failures, window or duration",
				     k ? k : "?");
			failed = 1;
		}
	}
	failed |= get_uint(l, s, "failures", 0, 1000000, fallback->failures, &failures) < 0;
	ret->failures = (uint32_t)failures;
	failed |= get_duration(l, s, "window", fallback->window, &ret->window) < 0;
	failed |= get_duration(l, s, "duration", fallback->duration, &ret->duration) < 0;
	return failed ? -EINVAL : 0;
}

static int get_approval(struct loader *l, const config_setting_t *parent, struct approval_rule *ret)
{
	const config_setting_t *s = config_setting_get_member(parent, "approval");
	long long required;
	int failed = 0;

	*ret = (struct approval_rule){0};
	if (!s)
		return 0;
	if (!config_setting_is_group(s)) {
		loader_error(l, s, "approval must be a group: approval = { approvers = { users = [\"alice\"]; }; required = 1; };");
		return -EINVAL;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *k = config_setting_name(e);

		if (!k || (strcmp(k, "approvers") && strcmp(k, "required") && strcmp(k, "request_ttl"))) {
			loader_error(l, e, "unknown setting \"%s\" in approval; use approvers, required or request_ttl",
				     k ? k : "?");
			failed = 1;
		}
	}
	ret->enabled = true;
	failed |= get_principals(l, s, "approvers", &ret->approvers) < 0;
	if (!failed && ret->approvers.n_users == 0 && ret->approvers.n_groups == 0) {
		loader_error(l, s, "approval needs approvers: approvers = { users = [...]; groups = [...]; };");
		failed = 1;
	}
	failed |= get_uint(l, s, "required", 1, 16, 1, &required) < 0;
	ret->required = (uint32_t)required;
	failed |= get_duration(l, s, "request_ttl", DEFAULT_REQUEST_TTL, &ret->request_ttl) < 0;
	return failed ? -EINVAL : 0;
}

static int compare_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	if (x < y)
		return 1;
	if (x > y)
		return -1;
	return 0;
}

static int get_on_expiry(struct loader *l, const config_setting_t *group, enum on_expiry *ret)
{
	const config_setting_t *s = config_setting_get_member(group, "on_expiry");
	const char *text;

	*ret = ON_EXPIRY_TERMINATE;
	if (!s)
		return 0;
	text = config_setting_get_string(s);
	if (text && strcmp(text, "terminate") == 0)
		*ret = ON_EXPIRY_TERMINATE;
	else if (text && strcmp(text, "warn") == 0)
		*ret = ON_EXPIRY_WARN;
	else if (text && strcmp(text, "keep") == 0)
		*ret = ON_EXPIRY_KEEP;
	else {
		loader_error(l, s, "on_expiry must be \"terminate\", \"warn\" or \"keep\"");
		return -EINVAL;
	}
	return 0;
}

/* Parses the conditions and session settings both kinds of rule share. */
static int load_rule_conditions(struct loader *l, const config_setting_t *s, const struct policy *p,
				struct rule *r)
{
	char **warn = NULL;
	size_t n_warn = 0;
	long long v;
	int failed = 0;

	failed |= get_bool(l, s, "renew", true, &r->renew) < 0;
	failed |= get_principals(l, s, "verifiers", &r->verifiers) < 0;
	failed |= get_string_list(l, s, "services", service_is_valid, "sshd", &r->services,
				  &r->n_services) < 0;
	failed |= get_string_list(l, s, "sources", source_is_valid, "10.0.0.0/8", &r->source_texts,
				  &r->n_sources) < 0;
	r->sources = calloc(r->n_sources + 1, sizeof(*r->sources));
	if (!r->sources)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_sources; i++)
		(void)!netaddr_parse(r->source_texts[i], &r->sources[i]);
	failed |= get_string_list(l, s, "hours", hours_is_valid, "Mon-Fri 08:00-18:00",
				  &r->hours_texts, &r->n_hours) < 0;
	r->hours = calloc(r->n_hours + 1, sizeof(*r->hours));
	if (!r->hours)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_hours; i++)
		(void)!time_window_parse(r->hours_texts[i], &r->hours[i]);
	failed |= get_timezone(l, s, &r->timezone) < 0;
	failed |= get_approval(l, s, &r->approval) < 0;
	failed |= get_lockout(l, s, &p->lockout, &r->lockout) < 0;

	failed |= get_uint(l, s, "max_sessions", 0, 100000, 0, &v) < 0;
	r->max_sessions = (uint32_t)v;
	failed |= get_on_expiry(l, s, &r->on_expiry) < 0;
	failed |= get_duration(l, s, "grace", DEFAULT_GRACE, &r->grace) < 0;
	if (config_setting_get_member(s, "warn_before")) {
		failed |= get_string_list(l, s, "warn_before", duration_is_valid, "5m", &warn,
					  &n_warn) < 0;
	} else {
		static const char *const defaults[] = {"5m", "1m"};

		n_warn = MID_ELEMENTSOF(defaults);
		warn = calloc(n_warn + 1, sizeof(char *));
		for (size_t i = 0; warn && i < n_warn; i++)
			warn[i] = strdup(defaults[i]);
	}
	if (!warn && n_warn > 0)
		return -ENOMEM;
	r->warn_before = calloc(n_warn + 1, sizeof(uint64_t));
	if (!r->warn_before) {
		string_list_free(warn, n_warn);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_warn; i++)
		if (warn[i] && duration_parse(warn[i], &r->warn_before[r->n_warn_before]) == 0)
			r->n_warn_before++;
	qsort(r->warn_before, r->n_warn_before, sizeof(uint64_t), compare_desc);
	string_list_free(warn, n_warn);
	return failed ? -EINVAL : 0;
}

static int get_principals(struct loader *l, const config_setting_t *parent, const char *key,
			  struct principals *ret)
{
	const config_setting_t *s = config_setting_get_member(parent, key);
	int r1, r2;

	if (!s)
		return 0;
	if (!config_setting_is_group(s)) {
		loader_error(l, s, "%s must be a group: %s = { users = [...]; groups = [...]; };", key,
			     key);
		return -EINVAL;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *k = config_setting_name(config_setting_get_elem(s, (unsigned)i));

		if (!k || (strcmp(k, "users") != 0 && strcmp(k, "groups") != 0))
			loader_error(l, config_setting_get_elem(s, (unsigned)i),
				     "unknown setting \"%s\" in %s; use users or groups", k ? k : "?",
				     key);
	}
	r1 = get_name_list(l, s, "users", &ret->users, &ret->n_users);
	r2 = get_name_list(l, s, "groups", &ret->groups, &ret->n_groups);
	return r1 < 0 ? r1 : r2;
}

static void principals_free(struct principals *p)
{
	for (size_t i = 0; i < p->n_users; i++)
		free(p->users[i]);
	for (size_t i = 0; i < p->n_groups; i++)
		free(p->groups[i]);
	free(p->users);
	free(p->groups);
	*p = (struct principals){0};
}

static void rule_free(struct rule *r)
{
	free(r->name);
	free(r->prefix);
	free(r->group);
	free(r->shell);
	free(r->home_base);
	free(r->gecos);
	free(r->skeleton);
	free(r->timezone);
	principals_free(&r->requesters);
	principals_free(&r->verifiers);
	principals_free(&r->approval.approvers);
	string_list_free(r->services, r->n_services);
	string_list_free(r->source_texts, r->n_sources);
	string_list_free(r->hours_texts, r->n_hours);
	free(r->sources);
	free(r->hours);
	free(r->warn_before);
}

static int load_rule(struct loader *l, const config_setting_t *s, const struct policy *p,
		     bool ephemeral, struct rule *r)
{
	const char *what = ephemeral ? "class" : "account";
	long long v;
	int failed = 0, k;
	bool have_uids = true;

	r->ephemeral = ephemeral;
	r->line = config_setting_source_line(s);
	if (!config_setting_is_group(s)) {
		loader_error(l, s, "each %s must be a group in braces: { name = \"...\"; ... }", what);
		return -EINVAL;
	}
	check_unknown_keys(l, s, ephemeral ? MID_ELEMENTSOF(rule_keys) : ACCOUNT_KEYS);

	failed |= get_string(l, s, "name", NULL, &r->name) < 0;
	if (!r->name) {
		loader_error(l, s, "%s has no name; add name = \"...\";", what);
		return -EINVAL;
	}
	if (!name_is_valid(r->name)) {
		loader_error(l, s, "invalid %s name \"%s\": use letters, digits, '_', '-' or '.'",
			     what, r->name);
		failed = 1;
	}

	failed |= get_duration(l, s, "ttl", DEFAULT_TTL, &r->ttl) < 0;
	failed |= get_duration(l, s, "max_ttl", r->ttl > DEFAULT_MAX_TTL ? r->ttl : DEFAULT_MAX_TTL,
			       &r->max_ttl) < 0;
	if (!failed && r->ttl > r->max_ttl) {
		loader_error(l, s, "%s \"%s\": ttl is longer than max_ttl; lower ttl or raise max_ttl",
			     what, r->name);
		failed = 1;
	}
	failed |= get_uint(l, s, "max_uses", 0, UINT32_MAX, 0, &v) < 0;
	r->max_uses = (uint32_t)v;
	failed |= get_principals(l, s, "requesters", &r->requesters) < 0;
	failed |= load_rule_conditions(l, s, p, r) < 0;

	if (ephemeral) {
		failed |= get_string(l, s, "skeleton", NULL, &r->skeleton) < 0;
		failed |= get_bool(l, s, "create_home", true, &r->create_home) < 0;
		failed |= get_duration(l, s, "quarantine", DEFAULT_QUARANTINE, &r->quarantine) < 0;
		if (r->skeleton && r->skeleton[0] != '/') {
			loader_error(l, s, "class \"%s\": skeleton must be an absolute directory",
				     r->name);
			failed = 1;
		}
		failed |= get_string(l, s, "prefix", NULL, &r->prefix) < 0;
		failed |= get_string(l, s, "group", NULL, &r->group) < 0;
		failed |= get_string(l, s, "shell", DEFAULT_SHELL, &r->shell) < 0;
		failed |= get_string(l, s, "home", DEFAULT_HOME_BASE, &r->home_base) < 0;
		failed |= get_string(l, s, "gecos", "mid ephemeral account", &r->gecos) < 0;
		k = get_uint(l, s, "uid_min", 1000, UINT32_MAX - 1, -1, &v);
		failed |= k < 0;
		have_uids &= k == 0 && v >= 0;
		r->uid_min = (uid_t)v;
		if (k == 0 && v < 0)
			loader_error(l, s, "class \"%s\" has no uid_min; add uid_min = 60000; or similar",
				     r->name);
		failed |= v < 0;
		k = get_uint(l, s, "uid_max", 1000, UINT32_MAX - 1, -1, &v);
		failed |= k < 0;
		have_uids &= k == 0 && v >= 0;
		r->uid_max = (uid_t)v;
		if (k == 0 && v < 0)
			loader_error(l, s, "class \"%s\" has no uid_max; add uid_max = 60999; or similar",
				     r->name);
		failed |= v < 0;
		k = get_uint(l, s, "gid", 1000, UINT32_MAX - 1, -1, &v);
		failed |= k < 0;
		r->gid = (gid_t)v;
		if (k == 0 && v < 0)
			loader_error(l, s, "class \"%s\" has no gid; add the primary group's gid",
				     r->name);
		failed |= v < 0;
		if (!r->prefix || !name_is_valid(r->prefix) ||
		    strlen(r->prefix) + MID_LEASE_ID_LEN / 2 > MID_NAME_MAX) {
			loader_error(l, s,
				     "class \"%s\" needs a prefix of 1 to %d name characters, such as \"ci-\"",
				     r->name, MID_NAME_MAX - MID_LEASE_ID_LEN / 2);
			failed = 1;
		}
		if (!r->group || !name_is_valid(r->group)) {
			loader_error(l, s, "class \"%s\" needs a valid primary group name, such as group = \"mid-ci\";",
				     r->name);
			failed = 1;
		}
		if (have_uids && r->uid_min > r->uid_max) {
			loader_error(l, s, "class \"%s\": uid_min %u is above uid_max %u", r->name,
				     (unsigned)r->uid_min, (unsigned)r->uid_max);
			failed = 1;
		}
		if (r->shell && r->shell[0] != '/') {
			loader_error(l, s, "class \"%s\": shell must be an absolute path", r->name);
			failed = 1;
		}
		if (r->home_base && r->home_base[0] != '/') {
			loader_error(l, s, "class \"%s\": home must be an absolute directory", r->name);
			failed = 1;
		}
		if (r->gecos && strpbrk(r->gecos, ":\n")) {
			loader_error(l, s, "class \"%s\": gecos must not contain ':' or a newline",
				     r->name);
			failed = 1;
		}
	}
	return failed ? -EINVAL : 0;
}

static int load_rules(struct loader *l, const config_t *cfg, const struct policy *p,
		      const char *key, bool ephemeral, struct rule **ret, size_t *ret_n)
{
	const config_setting_t *list = config_lookup(cfg, key);
	int failed = 0, n;

	*ret = NULL;
	*ret_n = 0;
	if (!list)
		return 0;
	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		loader_error(l, list, "%s must be a list in parentheses: %s = ( { ... }, { ... } );",
			     key, key);
		return -EINVAL;
	}
	n = config_setting_length(list);
	*ret = calloc((size_t)n + 1, sizeof(struct rule));
	if (!*ret)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(list, (unsigned)i);
		struct rule *r = &(*ret)[*ret_n];

		(*ret_n)++;
		if (load_rule(l, s, p, ephemeral, r) < 0) {
			/* No prefix: check_classes skips a class that failed. */
			free(r->prefix);
			r->prefix = NULL;
			failed = 1;
			continue;
		}
		for (size_t j = 0; j + 1 < *ret_n; j++)
			if ((*ret)[j].name && strcmp((*ret)[j].name, r->name) == 0) {
				loader_error(l, s, "%s \"%s\" is defined twice (first at line %d)",
					     ephemeral ? "class" : "account", r->name, (*ret)[j].line);
				failed = 1;
			}
	}
	return failed ? -EINVAL : 0;
}

/* Classes must not overlap, with each other or with a named account, or
 * one name or UID could belong to two rules. */
static int check_classes(struct loader *l, const config_t *cfg, struct policy *p)
{
	const config_setting_t *list = config_lookup(cfg, "classes");
	int failed = 0;

	for (size_t i = 0; i < p->n_classes; i++) {
		const struct rule *a = &p->classes[i];
		const config_setting_t *s = config_setting_get_elem(list, (unsigned)i);

		if (!a->prefix)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct rule *b = &p->classes[j];

			if (!b->prefix)
				continue;
			if (a->uid_min <= b->uid_max && b->uid_min <= a->uid_max) {
				loader_error(l, s, "class \"%s\": UID range overlaps class \"%s\"",
					     a->name, b->name);
				failed = 1;
			}
			if (strncmp(a->prefix, b->prefix, strlen(a->prefix)) == 0 ||
			    strncmp(a->prefix, b->prefix, strlen(b->prefix)) == 0) {
				loader_error(l, s, "class \"%s\": prefix \"%s\" overlaps class \"%s\"",
					     a->name, a->prefix, b->name);
				failed = 1;
			}
		}
		for (size_t j = 0; j < p->n_accounts; j++)
			if (p->accounts[j].name &&
			    strncmp(p->accounts[j].name, a->prefix, strlen(a->prefix)) == 0) {
				loader_error(l, s, "account \"%s\" starts with the prefix of class \"%s\"",
					     p->accounts[j].name, a->name);
				failed = 1;
			}
	}
	return failed ? -EINVAL : 0;
}

static void check_top_level(struct loader *l, const config_t *cfg)
{
	const config_setting_t *root = config_root_setting(cfg);

	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *k = config_setting_name(s);

		if (!k || (strcmp(k, "accounts") != 0 && strcmp(k, "classes") != 0 &&
			   strcmp(k, "verifiers") != 0 && strcmp(k, "lockout") != 0 &&
			   strcmp(k, "timezone") != 0 && strcmp(k, "audit_retention") != 0))
			loader_error(l, s,
				     "unknown setting \"%s\"; the top level takes accounts, classes, verifiers, lockout, timezone and audit_retention",
				     k ? k : "?");
	}
}

int policy_load(const char *path, struct policy **ret, struct policy_errors *errors)
{
	struct loader l = {.path = path, .errors = errors};
	struct policy *p = NULL;
	config_t cfg;
	int r = 0;

	config_init(&cfg);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		char *line;

		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			r = asprintf(&line, "%s: cannot read file: %s", path, strerror(errno));
		else
			r = asprintf(&line, "%s:%d: %s", config_error_file(&cfg) ? config_error_file(&cfg) : path,
				     config_error_line(&cfg), config_error_text(&cfg));
		if (r >= 0) {
			char **grown = realloc(errors->lines, (errors->n + 1) * sizeof(char *));
			if (grown) {
				errors->lines = grown;
				errors->lines[errors->n++] = line;
			} else
				free(line);
		}
		r = -EINVAL;
		goto out;
	}

	p = calloc(1, sizeof(*p));
	if (!p) {
		r = -ENOMEM;
		goto out;
	}
	p->path = strdup(path);
	if (!p->path) {
		r = -ENOMEM;
		goto out;
	}

	check_top_level(&l, &cfg);
	{
		const struct lockout_rule defaults = {
			.failures = DEFAULT_LOCKOUT_FAILURES,
			.window = DEFAULT_LOCKOUT_WINDOW,
			.duration = DEFAULT_LOCKOUT_DURATION,
		};
		const config_setting_t *root = config_root_setting(&cfg);

		if (get_lockout(&l, root, &defaults, &p->lockout) < 0)
			r = -EINVAL;
		if (get_timezone(&l, root, &p->timezone) < 0)
			r = -EINVAL;
		if (get_duration(&l, root, "audit_retention", 0, &p->audit_retention) < 0)
			r = -EINVAL;
	}
	if (load_rules(&l, &cfg, p, "accounts", false, &p->accounts, &p->n_accounts) < 0)
		r = -EINVAL;
	if (load_rules(&l, &cfg, p, "classes", true, &p->classes, &p->n_classes) < 0)
		r = -EINVAL;
	if (check_classes(&l, &cfg, p) < 0)
		r = -EINVAL;
	if (get_principals(&l, config_root_setting(&cfg), "verifiers", &p->verifiers) < 0)
		r = -EINVAL;
	if (r == 0 && errors->n > 0)
		r = -EINVAL;
out:
	config_destroy(&cfg);
	if (r < 0) {
		policy_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_accounts; i++)
		rule_free(&p->accounts[i]);
	for (size_t i = 0; i < p->n_classes; i++)
		rule_free(&p->classes[i]);
	free(p->accounts);
	free(p->classes);
	principals_free(&p->verifiers);
	free(p->timezone);
	free(p->path);
	free(p);
}

void policy_errors_clear(struct policy_errors *errors)
{
	for (size_t i = 0; i < errors->n; i++)
		free(errors->lines[i]);
	free(errors->lines);
	*errors = (struct policy_errors){0};
}

const struct rule *policy_find_account(const struct policy *p, const char *account)
{
	for (size_t i = 0; i < p->n_accounts; i++)
		if (strcmp(p->accounts[i].name, account) == 0)
			return &p->accounts[i];
	return NULL;
}

const struct rule *policy_find_class(const struct policy *p, const char *class_name)
{
	for (size_t i = 0; i < p->n_classes; i++)
		if (strcmp(p->classes[i].name, class_name) == 0)
			return &p->classes[i];
	return NULL;
}

const struct rule *policy_find_class_of(const struct policy *p, const char *account)
{
	for (size_t i = 0; i < p->n_classes; i++)
		if (strncmp(account, p->classes[i].prefix, strlen(p->classes[i].prefix)) == 0)
			return &p->classes[i];
	return NULL;
}

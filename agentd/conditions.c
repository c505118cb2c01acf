/* The conditions a rule may set: PAM services, source networks and hours.
 * They are checked at issue (hours, and narrowing never wider than the
 * rule) and at every login (all of them). A refusal names the rule, the
 * condition and the value, never the credential. */
#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "names.h"

#define LIST_TEXT_MAX 320

static const char *rule_kind(const struct rule *rule)
{
	return rule->ephemeral ? "class" : "account";
}

/* Joins a list for a message: "sshd, su". */
static void join(char **items, size_t n, char *buf, size_t size)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && pos < size; i++) {
		int w = snprintf(buf + pos, size - pos, "%s%s", i ? ", " : "", items[i]);

		if (w < 0)
			break;
		pos += (size_t)w;
	}
}

static bool list_contains(char **items, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(items[i], s) == 0)
			return true;
	return false;
}

/* True when s is one entry of the comma-separated list csv. */
static bool csv_contains(const char *csv, const char *s)
{
	size_t len = strlen(s);

	for (const char *p = csv; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (n == len && strncmp(p, s, n) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

static bool csv_source_matches(const char *csv, const char *rhost)
{
	char buf[MID_TEXT_MAX + 1], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", csv);
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		struct netaddr n;

		if (netaddr_parse(item, &n) == 0 && netaddr_match(&n, rhost))
			return true;
	}
	return false;
}

static const char *rule_timezone(const struct agent *a, const struct rule *rule)
{
	return rule->timezone ? rule->timezone : a->policy->timezone;
}

/* Returns the index of the window that contains t, or -1. */
static int hours_match(const struct agent *a, const struct rule *rule, int64_t t)
{
	struct tm tm;

	if (time_local(t, rule_timezone(a, rule), &tm) < 0)
		return -1;
	for (size_t i = 0; i < rule->n_hours; i++)
		if (time_window_contains(&rule->hours[i], &tm))
			return (int)i;
	return -1;
}

static void reply_hours(const struct agent *a, const struct rule *rule, struct mid_response *resp)
{
	char hours[LIST_TEXT_MAX];
	const char *tz = rule_timezone(a, rule);

	join(rule->hours_texts, rule->n_hours, hours, sizeof(hours));
	reply(resp, MID_ERR_DENIED, "%s %s (%s:%d) allows logins only during hours %s (%s)",
	      rule_kind(rule), rule->name, a->policy->path, rule->line, hours,
	      tz ? tz : "host time zone");
}

/* A narrowed source must lie inside one of the rule's sources. */
static bool source_within_rule(const struct rule *rule, const struct netaddr *n)
{
	if (rule->n_sources == 0)
		return true;
	for (size_t i = 0; i < rule->n_sources; i++) {
		const struct netaddr *r = &rule->sources[i];
		char text[64];

		if (n->local || r->local) {
			if (n->local && r->local)
				return true;
			continue;
		}
		if (r->family != n->family || n->prefix < r->prefix)
			continue;
		if (!inet_ntop(n->family, n->addr, text, sizeof(text)))
			continue;
		if (netaddr_match(r, text))
			return true;
	}
	return false;
}

static int check_narrowing(struct agent *a, const struct rule *rule, const struct mid_request *req,
			   struct mid_response *resp)
{
	char buf[MID_TEXT_MAX + 1], *save = NULL, allowed[LIST_TEXT_MAX];

	snprintf(buf, sizeof(buf), "%s", req->services);
	for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (rule->n_services > 0 && !list_contains(rule->services, rule->n_services, s)) {
			join(rule->services, rule->n_services, allowed, sizeof(allowed));
			reply(resp, MID_ERR_DENIED,
			      "service %s is wider than %s %s (%s:%d) allows: %s", s, rule_kind(rule),
			      rule->name, a->policy->path, rule->line, allowed);
			return -EPERM;
		}
	}

	save = NULL;
	snprintf(buf, sizeof(buf), "%s", req->sources);
	for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		struct netaddr n;

		if (netaddr_parse(s, &n) < 0) {
			reply(resp, MID_ERR_INVALID,
			      "invalid source %s: write an address, a network such as 10.1.2.0/24, or local",
			      s);
			return -EINVAL;
		}
		if (!source_within_rule(rule, &n)) {
			join(rule->source_texts, rule->n_sources, allowed, sizeof(allowed));
			reply(resp, MID_ERR_DENIED, "source %s is wider than %s %s (%s:%d) allows: %s",
			      s, rule_kind(rule), rule->name, a->policy->path, rule->line, allowed);
			return -EPERM;
		}
	}
	return 0;
}

static bool csv_is_valid(const char *csv, bool (*valid)(const char *))
{
	char buf[MID_TEXT_MAX + 1], *save = NULL;

	if (!*csv)
		return true;
	if (csv[0] == ',' || csv[strlen(csv) - 1] == ',' || strstr(csv, ",,"))
		return false;
	snprintf(buf, sizeof(buf), "%s", csv);
	for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save))
		if (!valid(s))
			return false;
	return true;
}

static bool service_name_is_valid(const char *s)
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

int conditions_check_issue(struct agent *a, const struct rule *rule, const struct mid_request *req,
			   int64_t now, struct mid_response *resp)
{
	if (!csv_is_valid(req->services, service_name_is_valid)) {
		reply(resp, MID_ERR_INVALID,
		      "invalid service list \"%s\": give PAM service names separated by commas",
		      req->services);
		return -EINVAL;
	}
	if (check_narrowing(a, rule, req, resp) < 0)
		return -EPERM;
	if (rule->n_hours > 0 && hours_match(a, rule, now) < 0) {
		reply_hours(a, rule, resp);
		return -EPERM;
	}
	return 0;
}

int conditions_check_login(struct agent *a, const struct rule *rule, const struct lease *l,
			   const struct mid_request *req, int64_t now, struct mid_response *resp)
{
	char allowed[LIST_TEXT_MAX], rhost[80];
	const char *service = req->service[0] ? req->service : "(none)";

	text_escape(req->rhost[0] ? req->rhost : "local", rhost, sizeof(rhost));

	if ((rule->n_services > 0 && !list_contains(rule->services, rule->n_services, req->service)) ||
	    (l->info.services[0] && !csv_contains(l->info.services, req->service))) {
		if (l->info.services[0])
			snprintf(allowed, sizeof(allowed), "%s (narrowed at issue)", l->info.services);
		else
			join(rule->services, rule->n_services, allowed, sizeof(allowed));
		reply(resp, MID_ERR_DENIED, "%s %s (%s:%d) allows services %s, not %s",
		      rule_kind(rule), rule->name, a->policy->path, rule->line, allowed,
		      service_name_is_valid(service) ? service : "this service");
		return -EPERM;
	}

	if (rule->n_sources > 0) {
		bool ok = false;

		for (size_t i = 0; i < rule->n_sources && !ok; i++)
			ok = netaddr_match(&rule->sources[i], req->rhost);
		if (!ok) {
			join(rule->source_texts, rule->n_sources, allowed, sizeof(allowed));
			reply(resp, MID_ERR_DENIED, "%s %s (%s:%d) allows logins from %s, not from %s",
			      rule_kind(rule), rule->name, a->policy->path, rule->line, allowed,
			      rhost);
			return -EPERM;
		}
	}
	if (l->info.sources[0] && !csv_source_matches(l->info.sources, req->rhost)) {
		reply(resp, MID_ERR_DENIED,
		      "%s %s (%s:%d): this credential was narrowed at issue to sources %s, not %s",
		      rule_kind(rule), rule->name, a->policy->path, rule->line, l->info.sources,
		      rhost);
		return -EPERM;
	}

	if (rule->n_hours > 0 && hours_match(a, rule, now) < 0) {
		reply_hours(a, rule, resp);
		return -EPERM;
	}
	return 0;
}

/* ---- explain ---- */

struct explain {
	char *buf;
	size_t size;
	size_t pos;
	const char *denied_by; /* the first condition that denies */
};

MID_PRINTF(2, 3)
static void explain_line(struct explain *e, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (e->pos >= e->size)
		return;
	va_start(ap, fmt);
	w = vsnprintf(e->buf + e->pos, e->size - e->pos, fmt, ap);
	va_end(ap);
	if (w > 0)
		e->pos += (size_t)w;
	if (e->pos < e->size - 1) {
		e->buf[e->pos++] = '\n';
		e->buf[e->pos] = '\0';
	}
}

static void explain_deny(struct explain *e, const char *what)
{
	if (!e->denied_by)
		e->denied_by = what;
}

/* Builds the peer the explanation is for: as_user, or the caller. */
static int explain_peer(const struct mid_request *req, const struct peer *caller, struct peer *ret,
			gid_t *groups, int max_groups)
{
	char buf[4096];
	struct passwd pw, *found = NULL;
	int n = max_groups;

	if (!req->as_user[0]) {
		*ret = *caller;
		ret->groups = caller->groups;
		return 0;
	}
	if (getpwnam_r(req->as_user, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return -ENOENT;
	if (getgrouplist(found->pw_name, found->pw_gid, groups, &n) < 0)
		n = max_groups;
	*ret = (struct peer){.uid = found->pw_uid, .gid = found->pw_gid, .groups = groups,
			     .n_groups = n};
	return 0;
}

static void explain_rule(struct agent *a, const struct rule *rule, const struct peer *who,
			 const char *who_name, const struct mid_request *req, int64_t at,
			 struct explain *e)
{
	char list[LIST_TEXT_MAX], when[64], rhost[80];
	const char *tz = rule_timezone(a, rule);
	struct tm tm;
	int window;

	explain_line(e, "%s %s: rule at %s:%d", rule_kind(rule), rule->name, a->policy->path,
		     rule->line);
	if (peer_in_principals(who, &rule->requesters))
		explain_line(e, "requester %s: allowed", who_name);
	else {
		explain_line(e, "requester %s: denied, not in requesters", who_name);
		explain_deny(e, "requesters");
	}

	if (rule->n_services == 0)
		explain_line(e, "service %s: allowed (no services list)",
			     req->service[0] ? req->service : "(any)");
	else if (!req->service[0])
		explain_line(e, "service: not given; services are limited to %s",
			     (join(rule->services, rule->n_services, list, sizeof(list)), list));
	else if (list_contains(rule->services, rule->n_services, req->service))
		explain_line(e, "service %s: allowed", req->service);
	else {
		join(rule->services, rule->n_services, list, sizeof(list));
		explain_line(e, "service %s: denied, services are %s", req->service, list);
		explain_deny(e, "services");
	}

	text_escape(req->rhost[0] ? req->rhost : "local", rhost, sizeof(rhost));
	if (rule->n_sources == 0)
		explain_line(e, "source %s: allowed (no sources list)", rhost);
	else {
		size_t i;

		for (i = 0; i < rule->n_sources; i++)
			if (netaddr_match(&rule->sources[i], req->rhost))
				break;
		if (i < rule->n_sources)
			explain_line(e, "source %s: allowed by %s", rhost, rule->source_texts[i]);
		else {
			join(rule->source_texts, rule->n_sources, list, sizeof(list));
			explain_line(e, "source %s: denied, sources are %s", rhost, list);
			explain_deny(e, "sources");
		}
	}

	if (time_local(at, tz, &tm) == 0)
		strftime(when, sizeof(when), "%a %Y-%m-%d %H:%M", &tm);
	else
		snprintf(when, sizeof(when), "%lld", (long long)at);
	window = rule->n_hours ? hours_match(a, rule, at) : -1;
	if (rule->n_hours == 0)
		explain_line(e, "time %s: allowed (no hours list)", when);
	else if (window >= 0)
		explain_line(e, "time %s (%s): allowed by %s", when, tz ? tz : "host time zone",
			     rule->hours_texts[window]);
	else {
		join(rule->hours_texts, rule->n_hours, list, sizeof(list));
		explain_line(e, "time %s (%s): denied, hours are %s", when,
			     tz ? tz : "host time zone", list);
		explain_deny(e, "hours");
	}

	if (rule->approval.enabled)
		explain_line(e, "approval: %u approval(s) needed before the credential is issued",
			     rule->approval.required);
	if (rule->max_uses)
		explain_line(e, "uses: at most %u per credential", rule->max_uses);
}

void explain_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		    struct mid_response *resp)
{
	gid_t groups[256];
	struct peer who;
	struct explain e = {.buf = resp->detail, .size = sizeof(resp->detail)};
	const struct rule *rule = NULL;
	const char *name = req->account[0] ? req->account : req->class_name;
	char who_name[MID_NAME_MAX + 16];
	int64_t at = req->at ? req->at : now_realtime();

	if (!!req->account[0] == !!req->class_name[0] || !name_is_valid(name)) {
		reply(resp, MID_ERR_INVALID, "explain needs a valid ACCOUNT or --class CLASS");
		return;
	}
	if (req->as_user[0] && peer->uid != 0) {
		reply(resp, MID_ERR_PERMISSION, "only root may explain the policy as another user");
		return;
	}
	if (explain_peer(req, peer, &who, groups, (int)MID_ELEMENTSOF(groups)) < 0) {
		reply(resp, MID_ERR_NOT_FOUND, "user %s does not exist on this host", req->as_user);
		return;
	}
	if (req->as_user[0])
		snprintf(who_name, sizeof(who_name), "%s", req->as_user);
	else
		snprintf(who_name, sizeof(who_name), "UID %u", (unsigned)who.uid);

	rule = req->account[0] ? policy_find_account(a->policy, req->account)
			       : policy_find_class(a->policy, req->class_name);
	if (!rule && req->account[0])
		rule = policy_find_class_of(a->policy, req->account);
	/* A caller who may not read a rule gets the answer for a name without
	 * one, so explain does not reveal which names the policy lists. */
	if (rule && peer->uid != 0 && !peer_in_principals(peer, &rule->requesters) &&
	    !peer_may_verify(a, peer, rule))
		rule = NULL;
	/* The same answer whether or not the account exists on the host. */
	if (!rule) {
		explain_line(&e, "%s %s: no rule in %s", req->account[0] ? "account" : "class", name,
			     a->policy->path);
		reply(resp, MID_OK, "denied: no rule in %s names %s", a->policy->path, name);
		return;
	}

	explain_rule(a, rule, &who, who_name, req, at, &e);
	if (e.denied_by)
		reply(resp, MID_OK, "denied by %s of %s %s (%s:%d)", e.denied_by, rule_kind(rule),
		      rule->name, a->policy->path, rule->line);
	else
		reply(resp, MID_OK, "allowed by %s %s (%s:%d)", rule_kind(rule), rule->name,
		      a->policy->path, rule->line);
}

/* Publishing the NSS cache and ending leases at their expiry. */
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "agent.h"
#include "cache.h"
#include "log.h"

struct group_entry {
	const char *name;
	gid_t gid;
	int64_t expires_at;
};

struct publish_state {
	struct agent *agent;
	struct mid_cache_builder *builder;
	struct group_entry *groups; /* one per class */
	int64_t now;
};

static int on_publish_lease(const struct live_account *l, void *userdata)
{
	struct publish_state *st = userdata;
	int r;

	/* Named accounts are listed as managed from the policy, and a class's
	 * accounts by its "PREFIX*" entry, so a lease adds only its user. */
	if (l->expires_at <= st->now || !l->class_name[0])
		return 0;

	r = mid_cache_builder_add_user(st->builder, l->account, l->uid, l->gid, l->gecos, l->home,
				       l->shell, l->expires_at);
	if (r < 0)
		return r;

	/* A class's primary group lives as long as its last live member. */
	for (size_t i = 0; i < st->agent->policy->n_classes; i++) {
		struct group_entry *g = &st->groups[i];

		if (strcmp(st->agent->policy->classes[i].name, l->class_name) != 0)
			continue;
		if (l->expires_at > g->expires_at)
			g->expires_at = l->expires_at;
	}
	return 0;
}

int cache_publish(struct agent *a)
{
	struct publish_state st = {.agent = a, .now = now_realtime()};
	int r;

	r = mid_cache_builder_new(&st.builder);
	if (r < 0)
		return r;
	st.groups = calloc(a->policy->n_classes + 1, sizeof(*st.groups));
	if (!st.groups) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < a->policy->n_classes; i++) {
		st.groups[i].name = a->policy->classes[i].group;
		st.groups[i].gid = a->policy->classes[i].gid;
	}

	for (size_t i = 0; i < a->policy->n_accounts; i++) {
		r = mid_cache_builder_add_managed(st.builder, a->policy->accounts[i].name);
		if (r < 0)
			goto out;
	}
	/* "PREFIX*" marks every name of a class as managed, so pam_mid keeps
	 * refusing an ephemeral account after its lease has ended. */
	for (size_t i = 0; i < a->policy->n_classes; i++) {
		char pattern[MID_NAME_MAX + 2];

		snprintf(pattern, sizeof(pattern), "%s*", a->policy->classes[i].prefix);
		r = mid_cache_builder_add_managed(st.builder, pattern);
		if (r < 0)
			goto out;
	}
	r = store_foreach_live_account(a->store, on_publish_lease, &st);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < a->policy->n_classes; i++) {
		if (st.groups[i].expires_at == 0)
			continue;
		r = mid_cache_builder_add_group(st.builder, st.groups[i].name, st.groups[i].gid,
						st.groups[i].expires_at);
		/* Two classes may share one primary group. */
		if (r < 0 && r != -EEXIST)
			goto out;
	}

	r = mid_cache_builder_publish(st.builder, a->cache_path, ++a->cache_generation, st.now);
out:
	if (r < 0)
		log_error("Failed to publish the NSS cache %s: %s", a->cache_path, strerror(-r));
	free(st.groups);
	mid_cache_builder_free(st.builder);
	return r;
}

struct expire_state {
	struct agent *agent;
	int64_t now;
	struct lease *ended; /* ephemeral leases that ended, for account cleanup */
	size_t n_ended;
	int failures;
};

static int on_due_lease(const struct lease *l, void *userdata)
{
	struct expire_state *st = userdata;
	struct store *s = st->agent->store;
	int r;

	r = store_begin(s);
	if (r == 0)
		r = store_lease_set_state(s, l->info.lease, MID_LEASE_EXPIRED, st->now);
	if (r == 0)
		r = store_audit_append(s, st->now,
				       &(struct audit_record){.event = "expire",
							      .account = l->info.account,
							      .lease = l->info.lease,
							      .peer_uid = -1});
	if (r == 0)
		r = store_commit(s);
	else
		store_rollback(s);
	if (r < 0) {
		/* The lease stays live in the database, but every check also
		 * compares its expiry with the clock, so it no longer works. */
		st->failures++;
		return 0;
	}

	sessions_on_lease_end(st->agent, l, "expired");
	if (l->info.class_name[0]) {
		struct lease *grown = realloc(st->ended, (st->n_ended + 1) * sizeof(*grown));

		if (grown) {
			st->ended = grown;
			st->ended[st->n_ended++] = *l;
		} else
			log_error("Out of memory: the account of lease %s is cleaned up later",
				  l->info.lease);
	}
	log_event(LOG_INFO,
		  &(struct log_fields){.message_id = MID_MESSAGE_EXPIRED,
				       .account = l->info.account,
				       .lease = l->info.lease,
				       .peer_uid = -1,
				       .expires_at = l->info.expires_at},
		  "Lease %s of account %s expired", l->info.lease, l->info.account);
	return 0;
}

static int on_expiry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent *a = userdata;

	(void)expiry_schedule(a);
	return 0;
}

int expiry_schedule(struct agent *a)
{
	struct expire_state st = {.agent = a, .now = now_realtime()};
	int64_t next;
	uint64_t usec;
	int r;

	r = store_foreach_due(a->store, st.now, on_due_lease, &st);
	if (st.n_ended > 0) {
		/* The account leaves NSS first, then its home and processes go. */
		(void)cache_publish(a);
		for (size_t i = 0; i < st.n_ended; i++)
			accounts_on_lease_end(a, &st.ended[i]);
		sodium_memzero(st.ended, st.n_ended * sizeof(*st.ended));
	}
	free(st.ended);
	if (r < 0)
		return r;

	r = store_next_expiry(a->store, &next);
	if (r == -ENOENT) {
		if (a->expiry_timer)
			(void)sd_event_source_set_enabled(a->expiry_timer, SD_EVENT_OFF);
		return 0;
	}
	if (r < 0)
		return r;
	/* A lease whose end could not be written is retried a second later. */
	if (st.failures > 0 || next <= st.now)
		next = st.now + 1;

	usec = (uint64_t)next * 1000000u;
	if (!a->expiry_timer) {
		r = sd_event_add_time(a->event, &a->expiry_timer, CLOCK_REALTIME, usec, 1000,
				      on_expiry_timer, a);
		if (r < 0) {
			log_error("Failed to arm the expiry timer: %s", strerror(-r));
			return r;
		}
		return 0;
	}
	r = sd_event_source_set_time(a->expiry_timer, usec);
	if (r >= 0)
		r = sd_event_source_set_enabled(a->expiry_timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_error("Failed to arm the expiry timer: %s", strerror(-r));
	return r;
}

/* Publishing the NSS cache and ending leases at their expiry. */
#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "agent.h"
#include "cache.h"
#include "log.h"

struct publish_state {
	struct mid_cache_builder *builder;
	int64_t now;
};

static int on_publish_lease(const struct live_account *l, void *userdata)
{
	struct publish_state *st = userdata;

	/* Named accounts are listed as managed from the policy, and a class's
	 * accounts by its "PREFIX*" entry, so a lease adds only its user. */
	if (l->expires_at <= st->now || !l->class_name[0])
		return 0;
	return mid_cache_builder_add_user(st->builder, l->account, l->uid, l->gid, l->gecos, l->home,
					  l->shell, l->expires_at);
}

/* Builds the cache's content from the policy and the live leases. */
static int cache_build(struct agent *a, int64_t now, struct mid_cache_builder **ret)
{
	struct publish_state st = {.now = now};
	int r;

	r = mid_cache_builder_new(&st.builder);
	if (r < 0)
		return r;
	for (size_t i = 0; i < a->policy->n_accounts; i++) {
		r = mid_cache_builder_add_managed(st.builder, a->policy->accounts[i].name);
		if (r < 0)
			goto fail;
	}
	/* "PREFIX*" marks every name of a class as managed, so pam_mid keeps
	 * refusing an ephemeral account after its lease has ended. */
	for (size_t i = 0; i < a->policy->n_classes; i++) {
		char pattern[MID_NAME_MAX + 2];

		snprintf(pattern, sizeof(pattern), "%s*", a->policy->classes[i].prefix);
		r = mid_cache_builder_add_managed(st.builder, pattern);
		if (r < 0)
			goto fail;
	}
	r = store_foreach_live_account(a->store, on_publish_lease, &st);
	if (r < 0)
		goto fail;
	/* A class's primary group lives as long as its last live member. */
	for (size_t i = 0; i < a->policy->n_classes; i++) {
		const struct rule *c = &a->policy->classes[i];
		int64_t last = mid_cache_builder_gid_expiry(st.builder, c->gid);

		if (last == 0)
			continue;
		r = mid_cache_builder_add_group(st.builder, c->group, c->gid, last);
		/* Two classes may share one primary group. */
		if (r < 0 && r != -EEXIST)
			goto fail;
	}
	*ret = st.builder;
	return 0;
fail:
	mid_cache_builder_free(st.builder);
	return r;
}

int cache_publish(struct agent *a)
{
	int64_t now = now_realtime();
	int r = 0;

	if (!a->cache_builder) {
		r = cache_build(a, now, &a->cache_builder);
		a->cache_removals = 0;
	}
	if (r == 0)
		r = mid_cache_builder_publish(a->cache_builder, a->cache_path, ++a->cache_generation,
					      now);
	if (r < 0)
		log_error("Failed to publish the NSS cache %s: %s", a->cache_path, strerror(-r));
	return r;
}

void cache_drop(struct agent *a)
{
	mid_cache_builder_free(a->cache_builder);
	a->cache_builder = NULL;
}

/* Sets the expiry of the lease's group to that of its last live member,
 * as a rebuild would. A group left without members makes the next
 * publish a rebuild, which leaves it out. */
static int group_follow(struct agent *a, const struct lease *l)
{
	int64_t last = mid_cache_builder_gid_expiry(a->cache_builder, l->info.gid);

	if (last == 0)
		return -ENOENT;
	return mid_cache_builder_set_group_expiry(a->cache_builder, l->group, l->info.gid, last);
}

/* Removed records leave their strings in the table. Past one removal per
 * live account, a rebuild reclaims them. */
#define REMOVALS_MIN 1024

static void note_result(struct agent *a, const struct lease *l, int r)
{
	if (r >= 0)
		return;
	log_debug("Rebuilding the NSS cache at the next publish: lease %s of %s: %s",
		  l->info.lease, l->info.account, strerror(-r));
	cache_drop(a);
}

void cache_lease_added(struct agent *a, const struct lease *l)
{
	int r;

	if (!a->cache_builder || !l->info.class_name[0] || l->info.expires_at <= now_realtime())
		return;
	r = mid_cache_builder_add_user(a->cache_builder, l->info.account, l->info.uid, l->info.gid,
				       l->gecos, l->home, l->shell, l->info.expires_at);
	if (r == 0)
		r = group_follow(a, l);
	note_result(a, l, r);
}

void cache_lease_renewed(struct agent *a, const struct lease *l)
{
	int r;

	if (!a->cache_builder || !l->info.class_name[0])
		return;
	r = mid_cache_builder_set_user_expiry(a->cache_builder, l->info.account,
					      l->info.expires_at);
	if (r == 0)
		r = group_follow(a, l);
	note_result(a, l, r);
}

void cache_lease_ended(struct agent *a, const struct lease *l)
{
	int r;

	if (!a->cache_builder || !l->info.class_name[0])
		return;
	r = mid_cache_builder_remove_user(a->cache_builder, l->info.account);
	/* A lease past its expiry was not in the cache. */
	if (r == -ENOENT)
		return;
	if (r == 0 && ++a->cache_removals > REMOVALS_MIN &&
	    a->cache_removals > mid_cache_builder_n_users(a->cache_builder)) {
		cache_drop(a);
		return;
	}
	if (r == 0)
		r = group_follow(a, l);
	note_result(a, l, r);
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
	r = store_end(s, r);
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
		for (size_t i = 0; i < st.n_ended; i++)
			cache_lease_ended(a, &st.ended[i]);
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

sbin_PROGRAMS += agentd/mid-agentd
agentd_mid_agentd_SOURCES = \
	agentd/main.c \
	agentd/agent.h \
	agentd/accounts.c \
	agentd/approvals.c \
	agentd/audit.c \
	agentd/conditions.c \
	agentd/lockout.c \
	agentd/log.c agentd/log.h \
	agentd/peer.c \
	agentd/policy.c agentd/policy.h \
	agentd/publish.c \
	agentd/requests.c \
	agentd/server.c \
	agentd/sessions.c \
	agentd/store.c agentd/store.h
agentd_mid_agentd_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(SYSTEMD_CFLAGS) $(SQLITE_CFLAGS)
agentd_mid_agentd_LDADD = lib/libmidagent.la lib/libmid.la $(SODIUM_LIBS) $(LIBCONFIG_LIBS) \
	$(SYSTEMD_LIBS) $(SQLITE_LIBS)

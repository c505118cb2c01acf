bin_PROGRAMS += midctl/midctl
midctl_midctl_SOURCES = \
	midctl/midctl.c midctl/midctl.h \
	midctl/util.c \
	midctl/cmd_approvals.c \
	midctl/cmd_audit.c \
	midctl/cmd_policy.c \
	midctl/cmd_sessions.c
midctl_midctl_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
midctl_midctl_LDADD = lib/libmid.la $(SODIUM_LIBS)

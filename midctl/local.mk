bin_PROGRAMS += midctl/midctl
midctl_midctl_SOURCES = midctl/midctl.c
midctl_midctl_LDADD = lib/libmid.la

# Hardening tests: hostile input, failing parts and load, against a real
# agent, the real PAM stack and the NSS module. The C tests need cmocka.
# The PAM test needs pam_wrapper as well, which configure finds together
# with libpamtest. The shell tests use tests/nss/mkcache and tests/lib.sh.
HARDENING_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
HARDENING_SOURCES = tests/hardening/hardening.c tests/hardening/hardening.h \
	tests/harness.c tests/harness.h
HARDENING_LIBS = lib/libmidagent.la lib/libmid.la $(CMOCKA_LIBS)

if HAVE_CMOCKA
check_PROGRAMS += tests/hardening/test_frames tests/hardening/test_nss_hostile \
	tests/hardening/test_load tests/hardening/test_timing
TESTS += tests/hardening/test_frames tests/hardening/test_nss_hostile \
	tests/hardening/test_load tests/hardening/test_timing

tests_hardening_test_frames_SOURCES = tests/hardening/test_frames.c $(HARDENING_SOURCES)
tests_hardening_test_frames_CPPFLAGS = $(HARDENING_CPPFLAGS)
tests_hardening_test_frames_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_hardening_test_frames_LDADD = $(HARDENING_LIBS)

tests_hardening_test_nss_hostile_SOURCES = tests/hardening/test_nss_hostile.c \
	$(HARDENING_SOURCES)
tests_hardening_test_nss_hostile_CPPFLAGS = $(HARDENING_CPPFLAGS)
tests_hardening_test_nss_hostile_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_hardening_test_nss_hostile_LDADD = $(HARDENING_LIBS) -ldl -lpthread

tests_hardening_test_load_SOURCES = tests/hardening/test_load.c $(HARDENING_SOURCES)
tests_hardening_test_load_CPPFLAGS = $(HARDENING_CPPFLAGS)
tests_hardening_test_load_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_hardening_test_load_LDADD = $(HARDENING_LIBS)

tests_hardening_test_timing_SOURCES = tests/hardening/test_timing.c $(HARDENING_SOURCES)
tests_hardening_test_timing_CPPFLAGS = $(HARDENING_CPPFLAGS)
tests_hardening_test_timing_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_hardening_test_timing_LDADD = $(HARDENING_LIBS) $(SODIUM_LIBS)

# The PAM test reads a copy of the agent's database with SQLite.
if HAVE_PAMTEST
check_PROGRAMS += tests/hardening/test_pam_hostile
TESTS += tests/hardening/test_pam_hostile
tests_hardening_test_pam_hostile_SOURCES = tests/hardening/test_pam_hostile.c \
	$(HARDENING_SOURCES)
tests_hardening_test_pam_hostile_CPPFLAGS = $(HARDENING_CPPFLAGS)
tests_hardening_test_pam_hostile_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS) \
	$(PAM_CFLAGS) $(SQLITE_CFLAGS)
tests_hardening_test_pam_hostile_LDADD = $(HARDENING_LIBS) $(SODIUM_LIBS) $(PAM_LIBS) \
	$(SQLITE_LIBS)
endif
endif

# nss_probe looks a user up through the module. nss_setuid.sh installs a
# setuid copy of it.
check_PROGRAMS += tests/hardening/nss_probe
tests_hardening_nss_probe_SOURCES = tests/hardening/nss_probe.c
tests_hardening_nss_probe_LDADD = -ldl

TESTS += tests/hardening/nss_getent_names.sh tests/hardening/nss_setuid.sh \
	tests/hardening/agent_ownership.sh
EXTRA_DIST += tests/hardening/nss_getent_names.sh tests/hardening/nss_setuid.sh \
	tests/hardening/agent_ownership.sh

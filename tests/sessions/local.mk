# Sessions: their end with the lease through a real sshd (root only), and
# the logind and signal paths of termination against a fake logind.
TESTS += tests/sessions/sshd_sessions.sh
EXTRA_DIST += tests/sessions/sshd_sessions.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/sessions/test_logind
TESTS += tests/sessions/test_logind
tests_sessions_test_logind_SOURCES = tests/sessions/test_logind.c tests/harness.c tests/harness.h
tests_sessions_test_logind_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_sessions_test_logind_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SYSTEMD_CFLAGS) \
	$(SQLITE_CFLAGS)
tests_sessions_test_logind_LDADD = lib/libmid.la $(CMOCKA_LIBS) $(SYSTEMD_LIBS) $(SQLITE_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/sessions/test_sessions
TESTS += tests/sessions/test_sessions
tests_sessions_test_sessions_SOURCES = tests/sessions/test_sessions.c tests/harness.c \
	tests/harness.h
tests_sessions_test_sessions_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_sessions_test_sessions_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_sessions_test_sessions_LDADD = lib/libmid.la $(CMOCKA_LIBS)
endif

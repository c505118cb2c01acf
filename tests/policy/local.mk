# approvals
if HAVE_CMOCKA
check_PROGRAMS += tests/policy/test_approvals
TESTS += tests/policy/test_approvals
tests_policy_test_approvals_SOURCES = tests/policy/test_approvals.c tests/harness.c \
	tests/harness.h
tests_policy_test_approvals_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_policy_test_approvals_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_policy_test_approvals_LDADD = lib/libmid.la $(CMOCKA_LIBS)
endif
# end approvals

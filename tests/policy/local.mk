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

# conditions
if HAVE_PAMTEST
if HAVE_CMOCKA
check_PROGRAMS += tests/policy/test_conditions tests/policy/test_races
TESTS += tests/policy/test_conditions tests/policy/test_races
tests_policy_test_conditions_SOURCES = tests/policy/test_conditions.c tests/harness.c \
	tests/harness.h
tests_policy_test_conditions_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_policy_test_conditions_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PAMTEST_CFLAGS) \
	$(SODIUM_CFLAGS) $(PAM_CFLAGS)
tests_policy_test_conditions_LDADD = lib/libmidagent.la lib/libmid.la $(CMOCKA_LIBS) \
	$(PAMTEST_LIBS) $(SODIUM_LIBS) $(PAM_LIBS)
tests_policy_test_races_SOURCES = tests/policy/test_races.c tests/harness.c tests/harness.h
tests_policy_test_races_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_policy_test_races_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PAMTEST_CFLAGS) \
	$(SODIUM_CFLAGS) $(PAM_CFLAGS) $(SQLITE_CFLAGS)
tests_policy_test_races_LDADD = lib/libmidagent.la lib/libmid.la $(CMOCKA_LIBS) \
	$(PAMTEST_LIBS) $(SODIUM_LIBS) $(PAM_LIBS) $(SQLITE_LIBS)
endif
endif
TESTS += tests/policy/reload.sh
EXTRA_DIST += tests/policy/reload.sh
# end conditions

# cmocka unit tests of lib/ and of the policy loader in agentd/policy.c.
if HAVE_CMOCKA
unit_tests = \
	tests/unit/test_token \
	tests/unit/test_duration \
	tests/unit/test_protocol \
	tests/unit/test_names \
	tests/unit/test_policy
check_PROGRAMS += $(unit_tests)
TESTS += $(unit_tests)

unit_cflags = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
unit_ldadd = lib/libmidagent.la lib/libmid.la $(SODIUM_LIBS) $(CMOCKA_LIBS)

tests_unit_test_token_SOURCES = tests/unit/test_token.c
tests_unit_test_token_CFLAGS = $(unit_cflags)
tests_unit_test_token_LDADD = $(unit_ldadd)

tests_unit_test_duration_SOURCES = tests/unit/test_duration.c
tests_unit_test_duration_CFLAGS = $(unit_cflags)
tests_unit_test_duration_LDADD = $(unit_ldadd)

tests_unit_test_protocol_SOURCES = tests/unit/test_protocol.c
tests_unit_test_protocol_CFLAGS = $(unit_cflags)
tests_unit_test_protocol_LDADD = $(unit_ldadd)

tests_unit_test_names_SOURCES = tests/unit/test_names.c
tests_unit_test_names_CFLAGS = $(unit_cflags)
tests_unit_test_names_LDADD = $(unit_ldadd)

# The policy test builds agentd/policy.c into itself, because the agent's
# objects are not in a library. policy.c needs only libconfig and lib/.
tests_unit_test_policy_SOURCES = tests/unit/test_policy.c agentd/policy.c agentd/policy.h
tests_unit_test_policy_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agentd
tests_unit_test_policy_CFLAGS = $(unit_cflags) $(LIBCONFIG_CFLAGS)
tests_unit_test_policy_LDADD = $(unit_ldadd) $(LIBCONFIG_LIBS)
endif

# Every test speaks TAP, so the summary counts single test cases.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
AM_TESTS_ENVIRONMENT = \
	CMOCKA_MESSAGE_OUTPUT=TAP; export CMOCKA_MESSAGE_OUTPUT; \
	MID_BUILDDIR='$(abs_top_builddir)'; export MID_BUILDDIR; \
	MID_SRCDIR='$(abs_top_srcdir)'; export MID_SRCDIR; \
	MID_ASAN_LIB='$(ASAN_LIB)'; export MID_ASAN_LIB; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0; export ASAN_OPTIONS; \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; export UBSAN_OPTIONS;

EXTRA_DIST += tests/lib.sh

include $(srcdir)/tests/unit/local.mk
include $(srcdir)/tests/nss/local.mk
include $(srcdir)/tests/pam/local.mk
include $(srcdir)/tests/e2e/local.mk
include $(srcdir)/tests/policy/local.mk
include $(srcdir)/tests/sessions/local.mk
include $(srcdir)/tests/audit/local.mk
include $(srcdir)/tests/hardening/local.mk
include $(srcdir)/tests/bench/local.mk

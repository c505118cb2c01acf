TESTS += tests/bench/smoke.sh
EXTRA_DIST += tests/bench/smoke.sh bench/run.sh bench/nss.sh bench/pam.sh bench/agent.sh \
	bench/bench_nss.c bench/bench_pam.c bench/bench_agent.c bench/gen_accounts.c \
	bench/nss_floor.c bench/plot.sh

# The fuzz targets build with clang's libFuzzer outside automake
# (fuzz/build.sh); the tarball carries them with their seeds.
EXTRA_DIST += fuzz/build.sh fuzz/run.sh fuzz/lsan.supp fuzz/make_seeds.c fuzz/fuzz_policy.dict \
	fuzz/fuzz_cache.c fuzz/fuzz_duration.c fuzz/fuzz_policy.c fuzz/fuzz_protocol.c \
	fuzz/fuzz_token.c fuzz/fuzz_netaddr.c fuzz/fuzz_timewindow.c fuzz/corpus

# Fuzzing (included by the Makefile). Targets:
#   make fuzz          libFuzzer builds (clang++-14, ASan + UBSan) in build-fuzz/, each target run
#                      FUZZ_SECONDS (default 60) one after the other; FUZZ_MERGE=1 merges new
#                      coverage into tests/fuzz/corpus/ (tests/fuzz/run.sh)
#   make fuzz-replay   every committed corpus through g++ ASan + UBSan replay binaries (build-asan/replay/,
#                      sharing objects with `make asan`); `make test` runs it via tests/run-all.sh
#   make fuzz-seeds    rewrites the signed/sealed seeds and tests/fuzz/fixed_jwks.inc (tests/fuzz/make_seeds.cpp)
FUZZ_TARGETS  := cookie query request jws jwks discovery token_response session_record dotenv next
FUZZ_SECONDS  ?= 60
FUZZ_MERGE    ?= 0
FUZZ_CXX      ?= clang++-14
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The replay shares build-asan/ with `make asan`: the same flags (UBSan halts via UBSAN_OPTIONS).
FUZZ_REPLAY_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=build-asan/replay/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-replay fuzz-replay-build fuzz-seeds
# Keep the target objects (make would delete them as intermediates and relink from scratch).
.PRECIOUS: $(BUILD)/tests/fuzz/%.o

# libFuzzer link: the fuzzer runtime provides main().
$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libkinde.a
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Replay link: tests/fuzz/replay.cpp provides main().
$(BUILD)/replay/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libkinde.a
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/make_seeds: $(BUILD)/tests/fuzz/make_seeds.o $(BUILD)/tests/unit/test_keys.o $(BUILD)/libkinde.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-build:
	@command -v $(FUZZ_CXX) >/dev/null || { echo "make fuzz needs $(FUZZ_CXX): apt-get install clang-14 libclang-rt-14-dev"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=build-fuzz CXX=$(FUZZ_CXX) OPT="-O1 -gline-tables-only" \
	  SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_TARGETS:%=build-fuzz/fuzz/fuzz_%)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_MERGE=$(FUZZ_MERGE) bash tests/fuzz/run.sh

fuzz-replay-build:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 SAN="$(FUZZ_REPLAY_SAN)" $(FUZZ_REPLAY_BINS)

fuzz-replay: fuzz-replay-build
	@bash tests/fuzz/replay.sh build-asan/replay

fuzz-seeds:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 SAN="$(FUZZ_REPLAY_SAN)" build-asan/make_seeds
	build-asan/make_seeds

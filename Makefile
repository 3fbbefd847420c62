# kinde-fcgi — build, test, run. `make help` lists the targets.
CXX      ?= g++
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
OPT      ?= -O2
SAN      ?=

CPPFLAGS += -Isrc -D_FORTIFY_SOURCE=2 -MMD -MP
CXXFLAGS += -std=c++17 $(OPT) -g -Wall -Wextra -Wpedantic -Wshadow -fstack-protector-strong -fPIE $(SAN)
LDFLAGS  += -pie -Wl,-z,relro,-z,now -Wl,-O1 -Wl,--as-needed -Wl,--hash-style=gnu $(SAN)
# libcurl is not linked: src/http/curl_transport.cpp dlopens it on the first provider call.
LDLIBS   := -lfcgi++ -lfcgi -lcgicc -lhiredis -lssl -lcrypto -lmstch -lpthread
# kinde.fcgi links its libraries statically but glibc and OpenSSL (Debian ships the .a files): at
# each start (every plain-CGI request) the dynamic loader binds far fewer symbols (5.7 M -> 2.9 M
# instructions). libcurl stays out: it is dlopen()ed on the first provider call. OpenSSL stays shared
# by default: Debian's security updates reach it, and libcurl's TLS then uses the same copy (a
# linked-in one makes a second, +0.4 MB private memory per process that called the provider).
# OPENSSL_LINK=static links libcrypto.a too, for plain CGI (another 2.3 M instructions less).
# Sanitizer builds link as the tests do.
OPENSSL_LINK ?= shared
ifeq ($(filter static shared,$(OPENSSL_LINK)),)
$(error OPENSSL_LINK must be static or shared, not '$(OPENSSL_LINK)')
endif
ifeq ($(SAN),)
ifeq ($(OPENSSL_LINK),static)
APP_LDLIBS := -Wl,-Bstatic -lfcgi++ -lfcgi -lcgicc -lhiredis -lmstch -lcrypto -Wl,-Bdynamic
else
APP_LDLIBS := -Wl,-Bstatic -lfcgi++ -lfcgi -lcgicc -lhiredis -lmstch -Wl,-Bdynamic -lcrypto
endif
APP_LDLIBS += -static-libstdc++ -static-libgcc -lpthread
else
APP_LDLIBS := $(LDLIBS)
endif

LIB_SRC  := $(shell find src -name '*.cpp' ! -path src/main.cpp | sort)
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/%.o)
TEST_SRC := tests/main.cpp $(sort $(wildcard tests/unit/*.cpp))
TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/%.o)

.PHONY: all deps test check unit integration e2e run install asan clean bench bench-callgrind bench-peers fuzz soak lint format-check help interop deb deb-test
.DEFAULT_GOAL := all

all: $(BUILD)/kinde.fcgi

help:
	@echo "make            build build/kinde.fcgi"
	@echo "make deps       install missing Debian and npm packages"
	@echo "make test       deps + build + unit, fuzz replay, integration and browser tests (alias: check)"
	@echo "make unit       the unit tests (Boost.Test) only"
	@echo "make integration  the integration tests (tests/idp, tests/integration; real servers and provider)"
	@echo "make e2e        the browser tests (tests/e2e; Debian chromium)"
	@echo "make run        serve the app at http://127.0.0.1:8000/ (local provider without Kinde keys)"
	@echo "make asan       the unit tests under AddressSanitizer and UBSan"
	@echo "make bench      benchmarks against a bare FastCGI hello world"
	@echo "make bench-callgrind  instructions per signed-in request only (callgrind; seconds, no wrk)"
	@echo "make bench-peers  kinde-fcgi against mod_auth_openidc, Django and FastAPI (installs them)"
	@echo "make soak       lighttpd + 4 app processes under load with kills and a provider restart (SOAK_SECONDS)"
	@echo "make fuzz       each libFuzzer target for FUZZ_SECONDS (60); FUZZ_MERGE=1 keeps new corpus"
	@echo "make fuzz-replay  the committed fuzz corpora under ASan/UBSan (part of make test)"
	@echo "make fuzz-seeds rewrite the signed/sealed fuzz seeds"
	@echo "make lint       cppcheck and clang-tidy-14 (.clang-tidy) over src/"
	@echo "make format-check  clang-format (.clang-format) reports files that differ from the house style"
	@echo "make interop    the browser flow against private glewlwyd and LemonLDAP::NG instances (build/interop/)"
	@echo "make install    install to \$$(DESTDIR)\$$(PREFIX)"
	@echo "make deb        build/kinde-fcgi_<version>_<arch>.deb (DEB_VERSION=... for another version); lintian if installed"
	@echo "make deb-test   NEEDS ROOT, CHANGES THIS SYSTEM: installs, upgrades, removes and purges the package,"
	@echo "                starts the system's Apache on a loopback port; not part of make test"
	@echo "make clean      remove build, build-asan, build-bench and build-fuzz"
	@echo "make help       this list"

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libkinde.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/kinde.fcgi: $(BUILD)/src/main.o $(BUILD)/libkinde.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(APP_LDLIBS)

# Boost.Test needs -DBOOST_TEST_DYN_LINK with the shared library.
$(BUILD)/tests/%.o: CPPFLAGS += -DBOOST_TEST_DYN_LINK -Itests
$(BUILD)/kinde_tests: $(TEST_OBJ) $(BUILD)/libkinde.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lboost_unit_test_framework

# make bench (never part of make test): an optimised build in build-bench/ without sanitizers, the
# bench's own programs (tests/bench/), then the runner, which prints the table and writes
# build-bench/bench.json.
BENCH_BINS := kinde.fcgi hello.fcgi hello_cgi cgi_time bench_driver
bench: deps
	@$(MAKE) --no-print-directory BUILD=build-bench OPT="-O2 -DNDEBUG" SAN= $(BENCH_BINS:%=build-bench/%)
	@node tests/bench/run.mjs build-bench

# make bench-callgrind: the steady-state instruction counts of the signed-in cases alone, counted as
# make bench counts them (tests/bench/callgrind_cases.mjs), to measure each change quickly.
bench-callgrind: deps
	@$(MAKE) --no-print-directory BUILD=build-bench OPT="-O2 -DNDEBUG" SAN= build-bench/kinde.fcgi build-bench/hello.fcgi build-bench/bench_driver
	@node tests/bench/callgrind_cases.mjs build-bench

# make bench-peers (never part of make test): the peers a site would run instead (Apache +
# mod_auth_openidc, Django + gunicorn, FastAPI + uvicorn; Debian packages, installed by
# scripts/bench-peers-deps.sh) side by side with kinde-fcgi and the bare hello world, in one run;
# the table goes to the terminal and build-bench/peers.json.
bench-peers: deps
	@scripts/bench-peers-deps.sh
	@$(MAKE) --no-print-directory BUILD=build-bench OPT="-O2 -DNDEBUG" SAN= build-bench/kinde.fcgi build-bench/hello.fcgi
	@node tests/bench/peers.mjs build-bench

$(BUILD)/hello.fcgi: tests/bench/hello.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $< -lfcgi

# Starts a program on a listening unix socket at fd 3 with LISTEN_FDS/LISTEN_PID, as systemd would.
$(BUILD)/listen_exec: tests/listen/listen_exec.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Wshadow -o $@ $<

$(BUILD)/hello_cgi: tests/bench/hello_cgi.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $<

$(BUILD)/cgi_time: tests/bench/cgi_time.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Wshadow -o $@ $<

$(BUILD)/bench_driver: $(BUILD)/tests/bench/bench_driver.o $(BUILD)/libkinde.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# make soak (never part of make test): lighttpd with 4 app processes under 16 looping clients for
# SOAK_SECONDS (default 180) while app processes are SIGKILLed at random and the provider restarts
# once; the runner prints a summary and exits non-zero on a lost session, an unexpected 5xx or a
# torn session file (checked by check_sessions, the store's own code).
soak: deps
	@$(MAKE) --no-print-directory all $(BUILD)/check_sessions
	@node tests/soak/run.mjs $(BUILD)

$(BUILD)/check_sessions: $(BUILD)/tests/soak/check_sessions.o $(BUILD)/libkinde.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# make interop (never part of make test): installs glewlwyd and LemonLDAP::NG from Debian
# (scripts/interop-deps.sh), sets up a private instance of each under build/interop/, and runs the
# browser flow of the e2e tests against each (tests/interop/run.mjs). Prints a provider x step table
# and exits non-zero when a step failed. INTEROP_PROVIDERS=glewlwyd,lemonldap picks.
interop: deps
	@bash scripts/interop-deps.sh
	@$(MAKE) --no-print-directory all
	@node tests/interop/run.mjs

deps:
	@bash scripts/deps.sh

unit: $(BUILD)/kinde_tests
	$(BUILD)/kinde_tests --log_level=test_suite --report_level=short

# The node suites alone (make test runs them all through tests/run-all.sh).
NODE_TEST := node --test --test-concurrency=1 --test-reporter=spec
integration: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all $(BUILD)/listen_exec
	@$(NODE_TEST) tests/idp/*.test.mjs tests/integration/*.test.mjs

e2e: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	@$(NODE_TEST) tests/e2e/*.test.mjs

test check: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all $(BUILD)/kinde_tests $(BUILD)/listen_exec fuzz-replay-build
	@bash tests/run-all.sh

run: deps all
	@bash scripts/run.sh

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" build-asan/kinde_tests build-asan/kinde.fcgi
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-asan/kinde_tests --report_level=short

# make install: the binary, templates, static files, man page and documentation, all under $(PREFIX)
# (nothing outside it). share/doc/kinde-fcgi/examples/ holds the system files with this PREFIX's
# paths, to copy into place by hand: the systemd units, the Apache and nginx snippets, the cron.d
# entry and a kinde.conf for /etc/kinde-fcgi/. make deb installs with PREFIX=/usr and puts them there.
EXAMPLES     := $(DESTDIR)$(PREFIX)/share/doc/kinde-fcgi/examples
SYSTEM_FILES := systemd/kinde-fcgi.socket systemd/kinde-fcgi.service apache2/conf-available/kinde-fcgi.conf \
                nginx/snippets/kinde-fcgi.conf nginx/snippets/kinde-fcgi-auth.conf nginx/snippets/kinde-fcgi-protect.conf \
                nginx/snippets/kinde-fcgi-php.conf nginx/snippets/kinde-fcgi-proxy.conf cron.d/kinde-fcgi
install: all
	install -d $(DESTDIR)$(PREFIX)/lib/kinde-fcgi $(DESTDIR)$(PREFIX)/share/kinde-fcgi/templates $(DESTDIR)$(PREFIX)/share/kinde-fcgi/htdocs $(DESTDIR)$(PREFIX)/share/doc/kinde-fcgi $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0755 $(BUILD)/kinde.fcgi $(DESTDIR)$(PREFIX)/lib/kinde-fcgi/kinde.fcgi
	cp -R templates/. $(DESTDIR)$(PREFIX)/share/kinde-fcgi/templates/
	cp -R htdocs/. $(DESTDIR)$(PREFIX)/share/kinde-fcgi/htdocs/
	find $(DESTDIR)$(PREFIX)/share/kinde-fcgi/htdocs -name .gitignore -delete
	install -m 0644 etc/kinde.conf.example apache-conf/kinde-fcgi.conf apache-conf/htaccess.example etc/lighttpd.conf etc/nginx.conf.example README.md $(DESTDIR)$(PREFIX)/share/doc/kinde-fcgi/
	install -m 0644 docs/kinde.fcgi.8 $(DESTDIR)$(PREFIX)/share/man/man8/kinde.fcgi.8
	@for f in $(SYSTEM_FILES); do \
	  install -d $(EXAMPLES)/$$(dirname $$f) && \
	  sed -e 's|/usr/lib/kinde-fcgi|$(PREFIX)/lib/kinde-fcgi|g' -e 's|/usr/share/kinde-fcgi|$(PREFIX)/share/kinde-fcgi|g' \
	    etc/$$f > $(EXAMPLES)/$$f && chmod 0644 $(EXAMPLES)/$$f && echo "installed $(EXAMPLES)/$$f" || exit 1; \
	done
	bash scripts/installed-conf.sh $(PREFIX) > $(EXAMPLES)/kinde.conf && chmod 0644 $(EXAMPLES)/kinde.conf

# make deb: the Debian package from make install PREFIX=/usr (scripts/deb/build.sh says how).
deb: deps all
	@bash scripts/deb/build.sh

# make deb-test (never part of make test; root only; changes the system): builds the package and a
# rebuild with a higher version, and installs, signs in through the system's Apache, upgrades,
# removes and purges, checking what is left at each step (scripts/deb/test.sh).
deb-test: deps all $(BUILD)/listen_exec
	@bash scripts/deb/test.sh

# Static analysis: findings fail the target; false positives are suppressed inline with a reason.
lint:
	@command -v cppcheck >/dev/null && command -v clang-tidy-14 >/dev/null || \
	  { echo "make lint needs cppcheck and clang-tidy-14: apt-get install cppcheck clang-tidy-14"; exit 1; }
	cppcheck --enable=warning,performance,portability --std=c++17 --inline-suppr --error-exitcode=1 --quiet -Isrc src/
	printf '%s\n' $(LIB_SRC) src/main.cpp | xargs -P2 -n4 sh -c 'clang-tidy-14 --quiet "$$@" -- -std=c++17 -Isrc' clang-tidy

# The house style is frozen in .clang-format; this lists the files clang-format would change.
format-check:
	@command -v clang-format >/dev/null || { echo "make format-check needs clang-format: apt-get install clang-format"; exit 1; }
	@clang-format --dry-run $(LIB_SRC) src/main.cpp $(shell find src -name '*.hpp') 2>&1 | grep -oE '^[^:]+\.(cpp|hpp)' | sort | uniq -c || true

include tests/fuzz/fuzz.mk

clean:
	rm -rf build build-asan build-bench build-fuzz

-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)

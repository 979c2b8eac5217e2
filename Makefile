# ccached — build, test and demo. Every target works on a fresh Debian 12 machine with Swift:
# the Debian packages the tests need are installed on first use (scripts/install-deps.sh).

SWIFT       ?= swift
PREFIX      ?= /usr/local
DESTDIR     ?=
MAN_OUT      = .build/plugins/GenerateManual/outputs
# systemd user units and the environment.d snippet (systemd also searches /usr/local/lib/...).
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
ENVDDIR     ?= $(PREFIX)/lib/environment.d
UNITS        = ccached.socket ccached.service ccached-krb5-conf.service
# The front door's system units (root, the standard KCM socket).
SYSTEMUNITDIR ?= $(PREFIX)/lib/systemd/system
DOOR_UNITS   = ccached-door.socket ccached-door.service
CONFIG      ?= debug
SWIFT_FLAGS ?=
BIN_DIR      = $(shell $(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --show-bin-path)
# Release binaries with the Swift runtime linked in and no $$ORIGIN rpath, so they run without the
# toolchain and depend only on Debian libraries (install, bench, deb); -z now makes the GOT fully
# read-only at start, as Debian hardens its binaries (lintian: hardening-no-bindnow).
RELEASE_FLAGS = -c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now
RELEASE_DIR   = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)

# The PAM module is plain C built with cc (not SwiftPM): it must load into sshd, login and su
# without libswiftCore or a toolchain RUNPATH (STYLE.md, fact 4).
CC          ?= cc
PAM_OUT      = .build/pam
MULTIARCH   := $(shell $(CC) -print-multiarch 2>/dev/null)
PAMDIR      ?= $(if $(MULTIARCH),/usr/lib/$(MULTIARCH)/security,$(or $(shell pkg-config --variable=libdir pam 2>/dev/null),/usr/lib)/security)
DOCDIR      ?= $(PREFIX)/share/doc/ccached
PAM_CFLAGS   = -std=gnu11 -O2 -g -fPIC -fvisibility=hidden -Wall -Wextra -Werror -D_GNU_SOURCE \
               -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
               -DCCACHECTL_DEFAULT="\"$(PREFIX)/bin/ccachectl\""
PAM_LDFLAGS  = -shared -Wl,--version-script=pam/pam_ccached.map -Wl,--no-undefined -Wl,-z,relro,-z,now \
               -Wl,--as-needed

# The libFuzzer target (Fuzz/) is a package of its own, so the root build never sees its flags; they
# instrument the root's libraries too. Release with debug info: about twice debug's executions per
# second, with ASan still checking every access and stacks still symbolised. lld because gold warns
# about ~140 local ASan symbols it cannot export. make test runs it for FUZZ_TEST_SECONDS.
FUZZ_SECONDS      ?= 600
FUZZ_TEST_SECONDS ?= 60
FUZZ_OUT           = .build/fuzz
FUZZ_BUILD         = $(SWIFT) build --package-path Fuzz --scratch-path "$(CURDIR)/$(FUZZ_OUT)" -c release \
                     --product ccached-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld

# The benchmark (Benchmarks/) is a package of its own, as swift-nio keeps its benchmarks: the root
# package ships no bench product, so release, install and deb never compile it. It measures the
# release binaries RELEASE_FLAGS makes (RELEASE_DIR), built beside it.
BENCH_OUT          = .build/bench
BENCH_BUILD        = $(SWIFT) build --package-path Benchmarks --scratch-path "$(CURDIR)/$(BENCH_OUT)" -c release
BENCH              = $(CURDIR)/$(BENCH_OUT)/release/ccached-bench

.PHONY: all build deps check test test-package test-login-routing test-upgrade test-door test-door-booted demo-door fuzz demo bench bench-build bench-deps bench-full bench-door bench-login \
        man pam pam-module release install install-files uninstall deb format lint clean help

all: build

help:
	@echo "make demo    run the real MIT tools through ccached against a throwaway KDC"
	@echo "make check   build and run the unit tests (fast; no apt, no KDC, no fuzzing)"
	@echo "make test    install test dependencies, build, run every test, then fuzz for $(FUZZ_TEST_SECONDS) s"
	@echo "make test-door  the front door's end-to-end tests (root; a private mount namespace, nothing on the host changes)"
	@echo "make demo-door  stock ksu, sudo and Heimdal klist finding a session's tickets through ccached-door (root)"
	@echo "make bench-door connect-plus-first-reply through ccached-door against a direct connection (root)"
	@echo "make bench-login what pam_ccached adds to a login, and its first connection (packages, booted container, root)"
	@echo "make fuzz    run the libFuzzer target for FUZZ_SECONDS (default $(FUZZ_SECONDS)); crashes go to $(FUZZ_OUT)/artifacts"
	@echo "make bench   quick benchmark: ccached vs Heimdal kcm, sssd-kcm, FILE, KEYRING, MEMORY, unpinned and pinned"
	@echo "make bench-full  the full benchmark profile (N up to 10,000)"
	@echo "make build   build ccached (CONFIG=release for an optimised build)"
	@echo "make pam     build the PAM session module .build/pam/pam_ccached.so (and the tests' PAM harness)"
	@echo "make man     generate the ccachectl man page (swift-argument-parser's plugin)"
	@echo "make install install ccached, ccachectl, man pages and docs under \$$(DESTDIR)\$$(PREFIX) (default /usr/local),"
	@echo "             pam_ccached.so under \$$(DESTDIR)\$$(PAMDIR) ($(PAMDIR))"
	@echo "make deb     the Debian packages ccached and libpam-ccached in $(DEB_OUT) (dpkg-buildpackage, lintian)"
	@echo "make test-package  install, use, upgrade and purge them in a booted Debian 12 container (root)"
	@echo "make test-login-routing  ssh, cron, tmux, su, user services and root helpers on the installed"
	@echo "             packages: which daemon each reaches (booted Debian 12 container, root, ~6 min)"
	@echo "make test-upgrade  upgrade and door restart with two logins holding tickets: every daemon"
	@echo "             moves to the new binary, no ticket or klist lost (booted container, root)"
	@echo "make lint    check formatting with swift format"
	@echo "make clean   remove build products"

deps:
	@scripts/install-deps.sh

build:
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS)

# The inner loop: build and the unit tests, no apt, no end-to-end tests against a KDC, no fuzzing.
check:
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --build-tests
	CCACHED_BIN="$(BIN_DIR)/ccached" $(SWIFT) test -c $(CONFIG) $(SWIFT_FLAGS) --skip-build \
	    --skip EndToEndTests --skip TicketRenewalTests

test: deps pam
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --build-tests
	CCACHED_BIN="$(BIN_DIR)/ccached" $(SWIFT) test -c $(CONFIG) $(SWIFT_FLAGS) --skip-build
	$(MAKE) test-package
	$(MAKE) test-login-routing
	$(MAKE) test-upgrade
	$(MAKE) test-door
	$(MAKE) test-door-booted
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

# The Debian packages (ccached, libpam-ccached) under $(DEB_OUT), built by dpkg-buildpackage through
# debian/rules, then checked by lintian (errors fail the build; the warnings left are explained in
# debian/*.lintian-overrides). Rebuilt only when a file that goes into them changed.
DEB_OUT      = .build/deb
DEB_SOURCES  = $(shell git ls-files -co --exclude-standard Package.swift Makefile Sources pam systemd debian \
                   Docs README.md 2>/dev/null)
deb: $(DEB_OUT)/stamp

$(DEB_OUT)/stamp: $(DEB_SOURCES)
	@scripts/install-deps.sh
	rm -rf $(DEB_OUT)
	mkdir -p $(DEB_OUT)
	CCACHED_DEB_DESTDIR="$(CURDIR)/$(DEB_OUT)" dpkg-buildpackage -us -uc -b --post-clean \
	    --buildinfo-file="$(CURDIR)/$(DEB_OUT)/ccached.buildinfo" --buildinfo-option=-u"$(CURDIR)/$(DEB_OUT)" \
	    --changes-file="$(CURDIR)/$(DEB_OUT)/ccached.changes" --changes-option=-u"$(CURDIR)/$(DEB_OUT)"
	lintian --fail-on error --info $(DEB_OUT)/ccached_*.deb $(DEB_OUT)/libpam-ccached_*.deb
	touch $@

# Install, use, upgrade and purge the packages in a booted Debian 12 container (root).
test-package: deps deb
	scripts/package-test.sh $(DEB_OUT)

# Logins, cron, tmux, su/sudo, user services and root helpers on the installed packages, in a
# booted Debian 12 container with sshd, pam_krb5, cron and tmux (root): which ccached each reaches.
test-login-routing: deps deb
	scripts/login-routing-check.sh $(DEB_OUT)

# An upgrade (the packages repacked with a bumped version) and a door restart with two logins
# holding tickets and a klist loop running: every daemon moves to the new binary, nothing is lost
# (booted Debian 12 container, root, ~2 min).
test-upgrade: deps deb
	scripts/upgrade-booted-check.sh $(DEB_OUT)

# Heimdal's tools are unpacked, not installed (they conflict with MIT's); without them (no apt
# access) the Heimdal checks say SKIPPED, NOT RUN.
test-door: deps
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS)
	if scripts/fetch-heimdal.sh .build/heimdal; then \
	    scripts/test-door.sh --bin "$(BIN_DIR)" --heimdal .build/heimdal/root; \
	else \
	    scripts/test-door.sh --bin "$(BIN_DIR)"; \
	fi

# The door's system units under a real systemd and logind, in a booted Debian 12 container (root).
test-door-booted: deps release
	scripts/door-booted-check.sh --bin "$(RELEASE_DIR)"

demo-door: deps build
	if scripts/fetch-heimdal.sh .build/heimdal; then \
	    scripts/test-door.sh --demo --bin "$(BIN_DIR)" --heimdal .build/heimdal/root; \
	else \
	    scripts/test-door.sh --demo --bin "$(BIN_DIR)"; \
	fi

bench-door: deps release bench-build
	scripts/bench-door.sh --bin "$(RELEASE_DIR)" --bench "$(BENCH)"

# What pam_ccached adds to a login and a login's first connection, with the built packages in a
# booted Debian 12 container (root, ~2 min after the packages are built).
bench-login: deps deb
	scripts/bench-login-booted.sh $(DEB_OUT)

fuzz: deps
	$(FUZZ_BUILD)
	scripts/fuzz.sh --bin "$$($(FUZZ_BUILD) --show-bin-path)/ccached-fuzz" --seconds $(FUZZ_SECONDS)

demo: deps build
	CCACHED="$(BIN_DIR)/ccached" scripts/demo.sh

# The peers (Heimdal kcm, sssd-kcm) are unpacked under .build/peers, never installed: only the
# benchmark needs them. If that fails (no mirror), the benchmark still runs and says which peer
# it skipped and why.
bench-deps:
	scripts/bench-deps.sh

# ccached-bench alone (its sub-commands: run, connect, coldstart, door, latency, soak).
bench-build:
	$(BENCH_BUILD)

# The products as `make release` builds them, one by one: a build of the whole package would also
# compile TestSupport, which needs the test library a release build does not have.
bench: deps release bench-build
	-scripts/bench-deps.sh
	scripts/bench.sh --profile quick --bench "$(BENCH)" --bin "$(RELEASE_DIR)"
	-scripts/bench-door.sh --bin "$(RELEASE_DIR)" --bench "$(BENCH)"
	-scripts/bench-first-connection.sh --bin "$(RELEASE_DIR)" --bench "$(BENCH)"
	-scripts/bench-door-memory.sh --bin "$(RELEASE_DIR)" --bench "$(BENCH)"
	-scripts/connect-probe.sh --bench "$(BENCH)" --rounds 3 --peers .build/peers/root "$(RELEASE_DIR)"
	scripts/bench-renewal.sh --bin "$(RELEASE_DIR)" --bench "$(BENCH)"

bench-full: deps release bench-build
	-scripts/bench-deps.sh
	scripts/bench.sh --profile full --bench "$(BENCH)" --bin "$(RELEASE_DIR)"
	scripts/bench-renewal.sh --bin "$(RELEASE_DIR)" --bench "$(BENCH)"

man:
	$(SWIFT) package generate-manual --configuration debug

pam: $(PAM_OUT)/pam_ccached.so $(PAM_OUT)/pam_harness

# The module alone (debian/rules builds it for PREFIX=/usr in a PAM_OUT of its own).
pam-module: $(PAM_OUT)/pam_ccached.so

# Only the shipped executables: a plain `swift build` would also compile every library target,
# TestSupport included, which imports Swift Testing (not there with --static-swift-stdlib).
RELEASE_PRODUCTS = ccached ccachectl ccached-door
release:
	for product in $(RELEASE_PRODUCTS); do $(SWIFT) build $(RELEASE_FLAGS) --product $$product || exit 1; done

# Rebuilt when the flags change (PREFIX is compiled in as the default ccachectl path).
$(PAM_OUT)/cflags: FORCE
	@mkdir -p $(PAM_OUT)
	@echo '$(CC) $(PAM_CFLAGS) $(PAM_LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(PAM_CFLAGS) $(PAM_LDFLAGS)' > $@

# The security rules it shares with the daemon and the door, compiled in from Sources/CSupport
# (hidden like the rest: the version script exports only the pam_sm_* entry points).
PAM_SHARED   = Sources/CSupport/private_directory.c Sources/CSupport/privilege.c
PAM_HEADERS  = Sources/CSupport/include/ccached_private_directory.h Sources/CSupport/include/ccached_privilege.h

$(PAM_OUT)/pam_ccached.so: pam/pam_ccached.c $(PAM_SHARED) $(PAM_HEADERS) pam/pam_ccached.map $(PAM_OUT)/cflags
	$(CC) $(PAM_CFLAGS) -ISources/CSupport/include $(PAM_LDFLAGS) -o $@ pam/pam_ccached.c $(PAM_SHARED) -lpam

# The tests' stand-in for login/sshd: drives a PAM session from a private config directory.
$(PAM_OUT)/pam_harness: pam/pam_harness.c
	@mkdir -p $(PAM_OUT)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ pam/pam_harness.c -lpam

FORCE:

DOC_FILES    = README.md Docs/integration.md Docs/client.md Docs/architecture.md Docs/protocol.md \
               Docs/security.md Docs/performance.md Docs/performance-log.md Docs/renewal.md

# The PAM module goes to the system's module directory (PAMDIR), not under PREFIX: PAM only looks
# there; it runs $(PREFIX)/bin/ccachectl, so it is built for this PREFIX. install-files copies what
# install built (debian/rules builds and copies in separate steps).
install: man $(PAM_OUT)/pam_ccached.so release
	$(MAKE) install-files

install-files:
	install -D -m 0755 "$(RELEASE_DIR)/ccached" "$(DESTDIR)$(PREFIX)/bin/ccached"
	install -D -m 0755 "$(RELEASE_DIR)/ccachectl" "$(DESTDIR)$(PREFIX)/bin/ccachectl"
	install -D -m 0755 "$(RELEASE_DIR)/ccached-door" "$(DESTDIR)$(PREFIX)/bin/ccached-door"
	install -D -m 0644 Docs/man/ccached-door.8 "$(DESTDIR)$(PREFIX)/share/man/man8/ccached-door.8"
	install -D -m 0644 systemd/krb5.conf.d-kcm.conf "$(DESTDIR)$(DOCDIR)/krb5.conf.d-kcm.conf"
	for unit in $(DOOR_UNITS); do \
	    sed 's#/usr/local/bin/#$(PREFIX)/bin/#g' "systemd/$$unit" > "systemd/$$unit.tmp" && \
	    install -D -m 0644 "systemd/$$unit.tmp" "$(DESTDIR)$(SYSTEMUNITDIR)/$$unit" && rm -f "systemd/$$unit.tmp"; \
	done
	install -D -m 0644 Docs/man/ccached.8 "$(DESTDIR)$(PREFIX)/share/man/man8/ccached.8"
	install -D -m 0644 $(MAN_OUT)/ccachectl/ccachectl.1 "$(DESTDIR)$(PREFIX)/share/man/man1/ccachectl.1"
	install -D -m 0644 $(PAM_OUT)/pam_ccached.so "$(DESTDIR)$(PAMDIR)/pam_ccached.so"
	install -D -m 0644 -t "$(DESTDIR)$(DOCDIR)" $(DOC_FILES) pam/krb5.conf.d-ccached.example
	for unit in $(UNITS); do \
	    sed 's#/usr/local/bin/#$(PREFIX)/bin/#g' "systemd/$$unit" > "systemd/$$unit.tmp" && \
	    install -D -m 0644 "systemd/$$unit.tmp" "$(DESTDIR)$(USERUNITDIR)/$$unit" && rm -f "systemd/$$unit.tmp"; \
	done
	install -D -m 0644 systemd/environment.d/60-ccached.conf "$(DESTDIR)$(ENVDDIR)/60-ccached.conf"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/ccached-door" "$(DESTDIR)$(PREFIX)/share/man/man8/ccached-door.8" \
	      "$(DESTDIR)$(DOCDIR)/krb5.conf.d-kcm.conf" $(foreach unit,$(DOOR_UNITS),"$(DESTDIR)$(SYSTEMUNITDIR)/$(unit)")
	rm -f "$(DESTDIR)$(PREFIX)/bin/ccached" "$(DESTDIR)$(PREFIX)/bin/ccachectl" \
	      "$(DESTDIR)$(PREFIX)/share/man/man8/ccached.8" "$(DESTDIR)$(PREFIX)/share/man/man1/ccachectl.1"
	rm -f "$(DESTDIR)$(PAMDIR)/pam_ccached.so" "$(DESTDIR)$(DOCDIR)/krb5.conf.d-ccached.example" \
	      $(foreach doc,$(notdir $(DOC_FILES)),"$(DESTDIR)$(DOCDIR)/$(doc)")
	-rmdir "$(DESTDIR)$(DOCDIR)" 2>/dev/null
	rm -f $(foreach unit,$(UNITS),"$(DESTDIR)$(USERUNITDIR)/$(unit)") "$(DESTDIR)$(ENVDDIR)/60-ccached.conf"

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift Fuzz/Sources Fuzz/Package.swift \
	    Benchmarks/Sources Benchmarks/Package.swift

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift Fuzz/Sources Fuzz/Package.swift \
	    Benchmarks/Sources Benchmarks/Package.swift

clean:
	rm -rf .build

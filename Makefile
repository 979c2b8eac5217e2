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
CONFIG      ?= debug
SWIFT_FLAGS ?=
BIN_DIR      = $(shell $(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --show-bin-path)

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

.PHONY: all build deps test fuzz demo bench bench-deps bench-full man pam install uninstall format lint clean help

all: build

help:
	@echo "make demo    run the real MIT tools through ccached against a throwaway KDC"
	@echo "make test    install test dependencies, build, run every test, then fuzz for $(FUZZ_TEST_SECONDS) s"
	@echo "make fuzz    run the libFuzzer target for FUZZ_SECONDS (default $(FUZZ_SECONDS)); crashes go to $(FUZZ_OUT)/artifacts"
	@echo "make bench   quick benchmark: ccached vs Heimdal kcm, sssd-kcm, FILE, KEYRING, MEMORY, unpinned and pinned"
	@echo "make bench-full  the full benchmark profile (N up to 10,000)"
	@echo "make build   build ccached (CONFIG=release for an optimised build)"
	@echo "make pam     build the PAM session module .build/pam/pam_ccached.so (and the tests' PAM harness)"
	@echo "make man     generate the ccachectl man page (swift-argument-parser's plugin)"
	@echo "make install install ccached, ccachectl, man pages and docs under \$$(DESTDIR)\$$(PREFIX) (default /usr/local),"
	@echo "             pam_ccached.so under \$$(DESTDIR)\$$(PAMDIR) ($(PAMDIR))"
	@echo "make lint    check formatting with swift format"
	@echo "make clean   remove build products"

deps:
	@scripts/install-deps.sh

build:
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS)

test: deps pam
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --build-tests
	CCACHED_BIN="$(BIN_DIR)/ccached" $(SWIFT) test -c $(CONFIG) $(SWIFT_FLAGS) --skip-build
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

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

bench: deps
	-scripts/bench-deps.sh
	$(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath $(SWIFT_FLAGS)
	scripts/bench.sh --profile quick --bin "$$($(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath $(SWIFT_FLAGS) --show-bin-path)"

bench-full: deps
	-scripts/bench-deps.sh
	$(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath $(SWIFT_FLAGS)
	scripts/bench.sh --profile full --bin "$$($(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath $(SWIFT_FLAGS) --show-bin-path)"

man:
	$(SWIFT) package generate-manual --configuration debug

pam: $(PAM_OUT)/pam_ccached.so $(PAM_OUT)/pam_harness

# Rebuilt when the flags change (PREFIX is compiled in as the default ccachectl path).
$(PAM_OUT)/cflags: FORCE
	@mkdir -p $(PAM_OUT)
	@echo '$(CC) $(PAM_CFLAGS) $(PAM_LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(PAM_CFLAGS) $(PAM_LDFLAGS)' > $@

$(PAM_OUT)/pam_ccached.so: pam/pam_ccached.c pam/pam_ccached.map $(PAM_OUT)/cflags
	$(CC) $(PAM_CFLAGS) $(PAM_LDFLAGS) -o $@ pam/pam_ccached.c -lpam

# The tests' stand-in for login/sshd: drives a PAM session from a private config directory.
$(PAM_OUT)/pam_harness: pam/pam_harness.c
	@mkdir -p $(PAM_OUT)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ pam/pam_harness.c -lpam

FORCE:

DOC_FILES    = README.md Docs/integration.md Docs/client.md Docs/architecture.md Docs/protocol.md \
               Docs/security.md Docs/performance.md

# Release binaries with the Swift runtime linked in and no $$ORIGIN rpath, so they run without the toolchain.
# The PAM module goes to the system's module directory (PAMDIR), not under PREFIX: PAM only looks
# there; it runs $(PREFIX)/bin/ccachectl, so it is built for this PREFIX.
install: man $(PAM_OUT)/pam_ccached.so
	$(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath
	install -D -m 0755 "$$($(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath --show-bin-path)/ccached" "$(DESTDIR)$(PREFIX)/bin/ccached"
	install -D -m 0755 "$$($(SWIFT) build -c release --static-swift-stdlib --disable-local-rpath --show-bin-path)/ccachectl" "$(DESTDIR)$(PREFIX)/bin/ccachectl"
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
	rm -f "$(DESTDIR)$(PREFIX)/bin/ccached" "$(DESTDIR)$(PREFIX)/bin/ccachectl" \
	      "$(DESTDIR)$(PREFIX)/share/man/man8/ccached.8" "$(DESTDIR)$(PREFIX)/share/man/man1/ccachectl.1"
	rm -f "$(DESTDIR)$(PAMDIR)/pam_ccached.so" "$(DESTDIR)$(DOCDIR)/krb5.conf.d-ccached.example" \
	      $(foreach doc,$(notdir $(DOC_FILES)),"$(DESTDIR)$(DOCDIR)/$(doc)")
	-rmdir "$(DESTDIR)$(DOCDIR)" 2>/dev/null
	rm -f $(foreach unit,$(UNITS),"$(DESTDIR)$(USERUNITDIR)/$(unit)") "$(DESTDIR)$(ENVDDIR)/60-ccached.conf"

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift Fuzz/Sources Fuzz/Package.swift

lint:
	$(SWIFT) format lint --recursive Sources Tests Package.swift Fuzz/Sources Fuzz/Package.swift

clean:
	rm -rf .build

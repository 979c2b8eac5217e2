# ccached — build, test and demo. Every target works on a fresh Debian 12 machine with Swift:
# the Debian packages the tests need are installed on first use (scripts/install-deps.sh).

SWIFT       ?= swift
PREFIX      ?= /usr/local
DESTDIR     ?=
MAN_OUT      = .build/plugins/GenerateManual/outputs
CONFIG      ?= debug
SWIFT_FLAGS ?=
BIN_DIR      = $(shell $(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --show-bin-path)

.PHONY: all build deps test demo bench bench-full man install uninstall format lint clean help

all: build

help:
	@echo "make demo    run the real MIT tools through ccached against a throwaway KDC"
	@echo "make test    install test dependencies, build, run every test"
	@echo "make bench   quick benchmark: ccached vs FILE, KEYRING, MEMORY and a raw socket (release build)"
	@echo "make bench-full  the full benchmark profile (N up to 10,000)"
	@echo "make build   build ccached (CONFIG=release for an optimised build)"
	@echo "make man     generate the ccachectl man page (swift-argument-parser's plugin)"
	@echo "make install install ccached, ccachectl and man pages under \$$(DESTDIR)\$$(PREFIX) (default /usr/local)"
	@echo "make lint    check formatting with swift format"
	@echo "make clean   remove build products"

deps:
	@scripts/install-deps.sh

build:
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS)

test: deps
	$(SWIFT) build -c $(CONFIG) $(SWIFT_FLAGS) --build-tests
	CCACHED_BIN="$(BIN_DIR)/ccached" $(SWIFT) test -c $(CONFIG) $(SWIFT_FLAGS) --skip-build

demo: deps build
	CCACHED="$(BIN_DIR)/ccached" scripts/demo.sh

bench: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS)
	scripts/bench.sh --profile quick --bin "$$($(SWIFT) build -c release $(SWIFT_FLAGS) --show-bin-path)"

bench-full: deps
	$(SWIFT) build -c release $(SWIFT_FLAGS)
	scripts/bench.sh --profile full --bin "$$($(SWIFT) build -c release $(SWIFT_FLAGS) --show-bin-path)"

man:
	$(SWIFT) package generate-manual --configuration debug

# Release binaries with the Swift runtime linked in, so they run without the toolchain.
install: man
	$(SWIFT) build -c release --static-swift-stdlib
	install -D -m 0755 "$$($(SWIFT) build -c release --static-swift-stdlib --show-bin-path)/ccached" "$(DESTDIR)$(PREFIX)/bin/ccached"
	install -D -m 0755 "$$($(SWIFT) build -c release --static-swift-stdlib --show-bin-path)/ccachectl" "$(DESTDIR)$(PREFIX)/bin/ccachectl"
	install -D -m 0644 Docs/man/ccached.8 "$(DESTDIR)$(PREFIX)/share/man/man8/ccached.8"
	install -D -m 0644 $(MAN_OUT)/ccachectl/ccachectl.1 "$(DESTDIR)$(PREFIX)/share/man/man1/ccachectl.1"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/ccached" "$(DESTDIR)$(PREFIX)/bin/ccachectl" \
	      "$(DESTDIR)$(PREFIX)/share/man/man8/ccached.8" "$(DESTDIR)$(PREFIX)/share/man/man1/ccachectl.1"

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

lint:
	$(SWIFT) format lint --recursive Sources Tests Package.swift

clean:
	rm -rf .build

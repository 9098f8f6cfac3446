# SPDX-License-Identifier: Apache-2.0
# OpaqueVault: `make demo` runs the whole flow on a local ov-server with SQLite; `make test` runs the tests.

SHELL   := /bin/bash
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
MOD     := github.com/opaquevault/opaquevault
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X $(MOD)/internal/version.Version=$(VERSION)
BIN     := bin
FUZZTIME ?= 3s
STATICCHECK_VERSION ?= v0.8.2
export PATH := $(dir $(GO)):$(PATH)

.PHONY: all build test test-unit fuzz-smoke fuzz lint vet bench demo clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# The test command CI runs: vet, every package's tests (race detector on), a short run of every fuzz
# target, the units' verification, and the real-systemd end-to-end harness (which says plainly that it
# skipped when it cannot run: not root, or no systemd-nspawn).
test: vet test-unit fuzz-smoke units repro e2e test-systemd

vet:
	$(GO) vet ./...

test-unit:
	$(GO) test -race -count=1 ./...

# Each fuzz target for $(FUZZTIME) (go test -fuzz takes one target at a time). A failing input fails
# the run; the fuzzing engine's own hiccups on a loaded machine (a worker that did not start in time)
# are retried once.
fuzz-smoke:
	@set -e; out=$$(mktemp); trap 'rm -f $$out' EXIT; \
	for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' $$dir/*_test.go 2>/dev/null | awk '{print $$2}'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    for try in 1 2; do \
	      if $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg >$$out 2>&1; then break; fi; \
	      if grep -q 'Failing input written to' $$out || [ $$try = 2 ]; then echo "FAIL fuzz $$pkg $$f"; tail -40 $$out; exit 1; fi; \
	      echo "  retrying: the fuzzing engine failed without a failing input:"; tail -5 $$out | sed 's/^/    /'; \
	    done; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-smoke FUZZTIME=60s

lint: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN) dist

# --- Packaging: debian/, rpm/, packaging/ (outputs under dist/) ---------------------------------------------------
.PHONY: deb rpm apt-repo tarball repro e2e units test-systemd

# opaquevault and opaquevault-server .debs in dist/deb (dpkg-buildpackage -us -uc -b on a staged copy of the tree),
# then lintian, which must report no error and no warning (overrides, with reasons, in debian/*.lintian-overrides).
deb:
	packaging/build-deb.sh dist/deb
	@if command -v lintian >/dev/null; then \
	  echo "lintian dist/deb/*.changes"; lintian --fail-on error,warning --info dist/deb/*.changes; \
	else echo "deb: lintian is not installed; skipped (apt-get install lintian)"; fi

# opaquevault and opaquevault-server .rpms in dist/rpm (rpmbuild -bb rpm/opaquevault.spec), then rpmlint.
rpm:
	packaging/build-rpm.sh dist/rpm

# A flat apt repository of the .debs in dist/apt-repo, signed (InRelease, Release.gpg; the public key beside it as
# opaquevault-archive-keyring.gpg, for deb [signed-by=...]; OV_APT_GNUPGHOME names the signing key, else a test key).
apt-repo: deb
	packaging/apt-repo.sh dist/deb dist/apt-repo

# The release tarball (dist/tarball/opaquevault-VERSION-linux-ARCH.tar.gz, with install.sh into /usr/local/bin);
# byte-identical when built twice from the same commit.
tarball:
	packaging/build-tarball.sh dist/tarball

# Two builds of the same tree give byte-identical .debs and tarball.
repro:
	packaging/check-reproducible.sh

# The real-systemd harness: Debian booted in systemd-nspawn, apt install, the user guide, reboots, upgrade, purge.
# Needs root; prints a skip line and succeeds without root or systemd-nspawn.
e2e:
	packaging/e2e/e2e.sh

# internal/agentinstall against a booted systemd, in the root filesystem `make e2e` cached (so it runs after it).
test-systemd:
	@if [ "$$(id -u)" != 0 ] || ! command -v systemd-nspawn >/dev/null; then \
	  echo "skip test-systemd: needs root and systemd-nspawn (sudo make test-systemd)"; \
	else OV_TEST_SYSTEMD=1 $(GO) test -count=1 -v -run '^TestUnderSystemd$$' ./internal/agentinstall/ | grep -E '^(---|ok|FAIL|PASS)|systemd_test'; exit $${PIPESTATUS[0]}; fi

# systemd-analyze verify and security on the shipped units (and the agent's, rendered by ov).
units: build
	packaging/verify-units.sh

# octoha — see README.md. Every target that needs system packages runs
# `deps` first, which installs them when it can (root or sudo with apt) and
# otherwise says what will fall back to embedded parts.

GO        ?= go
BIN       := bin/octoha
PKGS      := ./...
# Debian packages the tests and the real-component scenarios need.
DEB_PKGS  := haproxy nginx-light samba smbclient postgresql socat chromium debootstrap docker-compose
LABELS    ?=
FOCUS     ?=
PROVIDER  ?= local
GINKGO    := $(GO) run github.com/onsi/ginkgo/v2/ginkgo

.PHONY: all build release test test-images unit deps bench chaos vet fmt clean

all: build

# What `octoha version` reports (see cmd/octoha/version.go).
ifndef VERSION
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
endif
ifndef COMMIT
COMMIT := $(shell git rev-parse HEAD 2>/dev/null)
endif
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/octoha

# Release binaries: static (CGO_ENABLED=0), reproducible paths (-trimpath),
# stripped (-s -w), one per platform, and their checksums, in dist/. Only
# Linux runs local clusters; elsewhere octoha drives an external cluster
# (certify) and runs upload, attack, check and report.
DIST            := dist
RELEASE_TARGETS := linux/amd64 linux/arm64 windows/amd64 darwin/arm64
release:
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@for t in $(RELEASE_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; if [ $$os = windows ]; then ext=.exe; fi; \
	  out=$(DIST)/octoha-$$os-$$arch$$ext; echo "release: $$out ($(VERSION))"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $$out ./cmd/octoha || exit 1; \
	done
	@cd $(DIST) && if command -v sha256sum >/dev/null; then sha256sum octoha-*; else shasum -a 256 octoha-*; fi > SHA256SUMS
	@ls -l $(DIST)

deps:
	@./scripts/deps.sh $(DEB_PKGS)

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The whole test suite: unit and integration tests of every package (one
# package at a time: many measure timings on a 2-core machine), then
# the chaos catalogue itself (with TEST_UPLOAD_SIZE uploads, to bound CI
# time), run one after the other so timing assertions do not compete.
TEST_UPLOAD_SIZE ?= 256MiB
test: deps build vet test-images
	$(GO) test -count=1 -p 1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/scenarios$$')
	$(MAKE) --no-print-directory chaos OCTOHA_UPLOAD_SIZE=$(TEST_UPLOAD_SIZE) REPORT_DIR=reports/out/test-local-$$(date +%Y%m%d-%H%M%S)
	@if docker info >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory chaos PROVIDER=docker LABELS=docker OCTOHA_UPLOAD_SIZE=$(TEST_UPLOAD_SIZE) REPORT_DIR=reports/out/test-docker-$$(date +%Y%m%d-%H%M%S); \
	else echo "test: no Docker engine reachable: the docker-provider scenarios are skipped"; fi

# The docker provider's tests need the locally built images; build them when
# an engine is reachable (no registry is needed).
test-images:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory images; \
	else echo "test: no Docker engine reachable: docker-provider tests will skip"; fi

# The chaos catalogue (scenarios/): brings clusters up, injects faults,
# checks, and writes JUnit, JSON, Markdown and HTML reports into a
# timestamped directory under reports/out/. LABELS filters scenarios
# (Ginkgo label filter), FOCUS selects by name (a regular expression),
# PROVIDER picks local, docker, or auto (docker when an engine and the
# images are there), OCTOHA_UPLOAD_SIZE
# sizes the uploads (default 1GiB), OCTOHA_SEED replays a run.
ifndef REPORT_DIR
REPORT_DIR := reports/out/$(shell date +%Y%m%d-%H%M%S)
endif
export OCTOHA_UPLOAD_SIZE OCTOHA_SEED OCTOHA_CLUSTER OCTOHA_ALLOW_DESTRUCTIVE OCTOHA_API_KEY
chaos: deps build
	@mkdir -p $(REPORT_DIR)
	@echo "octoha chaos: provider=$(PROVIDER) labels='$(LABELS)' reports in $(REPORT_DIR)"
	@OCTOHA_BIN=$(CURDIR)/$(BIN) OCTOHA_PROVIDER=$(PROVIDER) OCTOHA_REPORT_DIR=$(abspath $(REPORT_DIR)) \
	  $(GINKGO) --label-filter='$(LABELS)' $(if $(FOCUS),--focus='$(FOCUS)') --output-dir=$(abspath $(REPORT_DIR)) \
	    --junit-report=junit.xml --json-report=ginkgo.json --timeout=40m \
	    --poll-progress-after=180s --poll-progress-interval=60s ./scenarios; \
	  rc=$$?; echo; echo "octoha chaos: reports in $(REPORT_DIR) (index.html, summary.md, junit.xml)"; \
	  if [ $$rc -ne 0 ]; then echo "octoha chaos: FAILED (exit $$rc) — open $(REPORT_DIR)/index.html to see why"; fi; exit $$rc

# Unit tests only (no real components needed).
unit:
	$(GO) test -count=1 -short $(PKGS)

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./fakes/... ./harness/...

clean:
	rm -rf bin $(DIST) reports/out

# Container images for the docker provider, built locally (no registry
# needed): see docker/README.md. Set OCTOHA_IMAGE_PREFIX to change their
# names, FORCE=1 to rebuild the ones that exist.
OCTOHA_IMAGE_PREFIX ?= octoha-local/
.PHONY: images
images:
	@GO="$(GO)" OCTOHA_IMAGE_PREFIX="$(OCTOHA_IMAGE_PREFIX)" ./scripts/images.sh build

# octoha — see README.md. Every target that needs system packages runs
# `deps` first, which installs them when it can (root or sudo with apt) and
# otherwise says what will fall back to embedded parts.

GO        ?= go
BIN       := bin/octoha
PKGS      := ./...
# Debian packages the tests and the real-component scenarios need.
DEB_PKGS  := haproxy nginx-light caddy samba smbclient postgresql socat chromium debootstrap docker-compose
LABELS    ?=
FOCUS     ?=
PROVIDER  ?= local

.PHONY: all build release test test-images unit deps bench chaos chaos-ginkgo vet fmt clean docs flake

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

# go vet, staticcheck (pinned; fetched through the Go module proxy on first
# use) and gofmt.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
vet:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The whole test suite: unit and integration tests of every package (one
# package at a time: many measure timings on a 2-core machine), then the
# chaos catalogue itself from the built binary (`make chaos`, with
# TEST_UPLOAD_SIZE uploads to bound CI time), then — where a Docker engine
# answers — the Ginkgo suite generated from the same catalogue
# (scenarios/) on the docker provider, so both entry points run.
TEST_UPLOAD_SIZE ?= 256MiB
test: deps build vet test-images
	$(GO) test -count=1 -p 1 -timeout 30m $$($(GO) list $(PKGS) | grep -v '/scenarios$$')
	$(MAKE) --no-print-directory chaos OCTOHA_UPLOAD_SIZE=$(TEST_UPLOAD_SIZE) REPORT_DIR=reports/out/test-local-$$(date +%Y%m%d-%H%M%S)
	@if docker info >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory chaos-ginkgo PROVIDER=docker LABELS=docker OCTOHA_UPLOAD_SIZE=$(TEST_UPLOAD_SIZE) REPORT_DIR=reports/out/test-docker-$$(date +%Y%m%d-%H%M%S); \
	else echo "test: no Docker engine reachable: the docker-provider scenarios are skipped"; fi

# The docker provider's tests need the locally built images; build them when
# an engine is reachable (no registry is needed).
test-images:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory images; \
	else echo "test: no Docker engine reachable: docker-provider tests will skip"; fi

# The chaos catalogue, run by the built binary (`octoha chaos`; no Ginkgo
# CLI to compile): brings clusters up, injects faults, undoes them, checks,
# and writes junit.xml, ginkgo.json, index.html, summary.json and
# summary.md into a timestamped directory under reports/out/. LABELS
# filters scenarios (Ginkgo label-filter syntax), FOCUS selects by title (a
# regular expression), PROVIDER picks local, docker, auto (docker when an
# engine and the images are there) or external (with OCTOHA_CLUSTER),
# OCTOHA_UPLOAD_SIZE sizes the uploads (default 1GiB), OCTOHA_SEED replays
# a run.
ifndef REPORT_DIR
REPORT_DIR := reports/out/$(shell date +%Y%m%d-%H%M%S)
endif
OCTOHA_UPLOAD_SIZE ?= 1GiB
CHAOS_ARGS = --provider '$(PROVIDER)' --upload-size '$(OCTOHA_UPLOAD_SIZE)' --out '$(REPORT_DIR)' \
	$(if $(LABELS),--labels '$(LABELS)') $(if $(FOCUS),--focus '$(FOCUS)') $(if $(OCTOHA_SEED),--seed '$(OCTOHA_SEED)') \
	$(if $(OCTOHA_CLUSTER),--cluster '$(OCTOHA_CLUSTER)') $(if $(filter 1 true yes,$(OCTOHA_ALLOW_DESTRUCTIVE)),--allow-destructive)
chaos: deps build
	@./$(BIN) chaos $(CHAOS_ARGS)

# The same catalogue through its Ginkgo suite (go test ./scenarios), for
# those who want Ginkgo's own output (verbose: each skip's reason; colour
# only on a terminal without NO_COLOR); same variables as chaos.
export OCTOHA_UPLOAD_SIZE OCTOHA_SEED OCTOHA_CLUSTER OCTOHA_ALLOW_DESTRUCTIVE OCTOHA_API_KEY
chaos-ginkgo: deps build
	@mkdir -p $(REPORT_DIR)
	OCTOHA_BIN=$(CURDIR)/$(BIN) OCTOHA_PROVIDER=$(PROVIDER) OCTOHA_REPORT_DIR=$(abspath $(REPORT_DIR)) \
	  $(GO) test -v -count=1 -timeout 60m ./scenarios -ginkgo.label-filter='$(LABELS)' $(if $(FOCUS),-ginkgo.focus='$(FOCUS)') \
	    -ginkgo.junit-report=$(abspath $(REPORT_DIR))/junit.xml -ginkgo.json-report=$(abspath $(REPORT_DIR))/ginkgo.json \
	    -ginkgo.poll-progress-after=180s -ginkgo.poll-progress-interval=60s -ginkgo.v \
	    -ginkgo.no-color=$$(if [ -t 1 ] && [ -z "$$NO_COLOR" ]; then echo false; else echo true; fi)

# Regenerate the pages generated from code (docs/catalogue.md); a test
# fails when they are stale.
docs:
	OCTOHA_UPDATE_DOCS=1 $(GO) test -count=1 -run TestCatalogueDocIsGenerated ./harness/scenario

# Flake hunt: the timing-sensitive packages (load balancers, fake node,
# clusters, task/traffic drivers, faults, runner, scenarios, checks, real
# services) FLAKE_COUNT times each, one package at a time, while stress-ng
# keeps one core busy (installed through scripts/deps.sh when it can be);
# fails on any failed run and prints package, runs, failures. FLAKE_PKGS
# narrows it; FLAKE_WRAP=isolated runs each package in a private network
# namespace on a machine shared with other test runs. See scripts/flake.sh.
FLAKE_COUNT ?= 5
FLAKE_PKGS  ?=
FLAKE_WRAP  ?=
flake: deps
	@GO='$(GO)' FLAKE_COUNT='$(FLAKE_COUNT)' FLAKE_WRAP='$(FLAKE_WRAP)' ./scripts/flake.sh $(FLAKE_PKGS)

# Unit tests only (no real components needed).
unit:
	$(GO) test -count=1 -short $(PKGS)

# Benchmarks that put octoha next to the plain tools, each pair in one
# run, alternating, printed as ratios with their spread (median (min–max)):
# octoha upload vs curl -F and go-octopusdeploy's UploadV2, octoha attack
# vs the vegeta CLI (rate 0 and a fixed rate, CPU per 10k requests), node
# vs a discard sink behind the same HAProxy, node → Samba vs smbclient put,
# and uploads with vs without Toxiproxy. BENCH_SIZE is each upload's size
# (256MiB: about 6 minutes on 2 cores; the issue's figures are at 1GiB),
# BENCH_ROUNDS the rounds per pair (default 5), BENCH a -bench regexp (BENCH=. runs
# every benchmark of fakes/ and harness/). They run in a private network
# namespace (scripts/isolated) where the machine allows one, so other clusters on
# 127.x cannot collide; the vegeta CLI is installed into bin/tools.
BENCH_SIZE     ?= 256MiB
BENCH_ROUNDS   ?= 5
BENCH          ?= VsCurl|VsVegetaCLI|NodeVsSink|NodeUploadSMB|ToxiproxyOverhead
VEGETA_VERSION ?= v12.13.0
ISOLATED       ?= $(shell scripts/isolated true >/dev/null 2>&1 && echo scripts/isolated)
bench: deps build
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)
	$(GO) test -run '^$$' -exec true ./fakes/... ./harness/... >/dev/null # compile here: no network in the namespace
	OCTOHA_BIN=$(CURDIR)/$(BIN) OCTOHA_VEGETA=$(CURDIR)/bin/tools/vegeta \
	OCTOHA_BENCH_SIZE=$(BENCH_SIZE) TEST_UPLOAD_SIZE=$(BENCH_SIZE) OCTOHA_BENCH_ROUNDS=$(BENCH_ROUNDS) \
	  $(ISOLATED) $(GO) test -count=1 -p 1 -run '^$$' -bench '$(BENCH)' -benchtime 1x -timeout 60m ./fakes/... ./harness/...

clean:
	rm -rf bin $(DIST) reports/out octoha-runs

# Container images for the docker provider, built locally (no registry
# needed): see docker/README.md. Set OCTOHA_IMAGE_PREFIX to change their
# names, FORCE=1 to rebuild the ones that exist.
OCTOHA_IMAGE_PREFIX ?= octoha-local/
.PHONY: images
images:
	@GO="$(GO)" OCTOHA_IMAGE_PREFIX="$(OCTOHA_IMAGE_PREFIX)" ./scripts/images.sh build

# octoha — see README.md. Every target that needs system packages runs
# `deps` first, which installs them when it can (root or sudo with apt) and
# otherwise says what will fall back to embedded parts.

GO        ?= go
BIN       := bin/octoha
PKGS      := ./...
# Debian packages the tests and the real-component scenarios need.
DEB_PKGS  := haproxy nginx-light samba smbclient postgresql socat chromium debootstrap
LABELS    ?=
PROVIDER  ?= local
GINKGO    := $(GO) run github.com/onsi/ginkgo/v2/ginkgo

.PHONY: all build test unit deps bench chaos vet fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/octoha

deps:
	@./scripts/deps.sh $(DEB_PKGS)

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The whole test suite: unit and integration tests of every package.
test: deps build vet
	$(GO) test -count=1 -timeout 30m $(PKGS)

# Unit tests only (no real components needed).
unit:
	$(GO) test -count=1 -short $(PKGS)

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./fakes/... ./harness/...

clean:
	rm -rf bin reports/out

# Container images for the docker provider, built locally (no registry
# needed): see docker/README.md. Set OCTOHA_IMAGE_PREFIX to change their
# names, FORCE=1 to rebuild the ones that exist.
OCTOHA_IMAGE_PREFIX ?= octoha-local/
.PHONY: images
images:
	@GO="$(GO)" OCTOHA_IMAGE_PREFIX="$(OCTOHA_IMAGE_PREFIX)" ./scripts/images.sh build

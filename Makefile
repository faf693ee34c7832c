# monokube build and test entry points. `make build` produces bin/monokube;
# `make test` is what CI runs (.ci/run).

GO            ?= go
KUBE_VERSION  := v1.37.1
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
BUILD_DATE    := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
GIT_COMMIT    := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)

# The embedded Kubernetes reports its version from these variables; without
# them it says v0.0.0 and kubectl cannot parse the server version.
KUBE_LDFLAGS := $(foreach pkg,k8s.io/component-base/version k8s.io/client-go/pkg/version, \
	-X $(pkg).gitVersion=$(KUBE_VERSION) -X $(pkg).gitMajor=1 -X $(pkg).gitMinor=37 \
	-X $(pkg).gitCommit=$(GIT_COMMIT) -X $(pkg).gitTreeState=clean -X $(pkg).buildDate=$(BUILD_DATE))
LDFLAGS := -s -w $(KUBE_LDFLAGS) -X github.com/monokube/monokube/internal/version.Version=$(VERSION)

# CGO off: kine uses the pure-Go SQLite driver, so the binary is fully static
# and needs no libsqlite (or libc) at run time.
export CGO_ENABLED := 0

.PHONY: build test unit integration bench clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/monokube ./cmd/monokube

unit:
	$(GO) test ./internal/...

integration: build
	MONOKUBE_BIN=$(CURDIR)/bin/monokube $(GO) test -count=1 -timeout 20m -v ./test/integration/...

test: unit integration

bench: build
	MONOKUBE_BENCH=1 MONOKUBE_BIN=$(CURDIR)/bin/monokube $(GO) test -count=1 -timeout 30m -run TestStartupNumbers -v ./bench/

clean:
	rm -rf bin

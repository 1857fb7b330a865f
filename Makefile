# frutos: make build | run | test | protocol | bench | lint | fuzz | chaos | soak
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/frutos
# A static binary: no cgo (it was dynamically linked), no symbol tables,
# no build paths. It runs on any Linux of its architecture.
STATIC  := CGO_ENABLED=0
RELEASE_PLATFORMS := linux/amd64 linux/arm64

.PHONY: build run test deps protocol protocol-deps bench sidebyside lint fuzz chaos chaos-streams soak clean release

build:
	$(STATIC) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/frutos

# Starts the daemon in the background with one worker per CPU, on :3000,
# with an embedded Redis (development); when it already runs, shows its
# status instead of failing. Stop it with: bin/frutos kill (put bin/ on
# your PATH, or `sudo install bin/frutos /usr/local/bin/`, to type frutos).
run: build
	@if ./$(BIN) status >/dev/null 2>&1; then \
	  echo "frutos already runs (stop it with: ./$(BIN) kill)"; ./$(BIN) status; \
	else \
	  ./$(BIN) start --instances max && \
	  echo "stop it with: ./$(BIN) kill   (or put $(CURDIR)/bin on your PATH and type frutos)"; \
	fi

# Static binaries for every platform of RELEASE_PLATFORMS in dist/, named
# frutos-<version>-<os>-<arch>, with version and commit stamped, and their
# SHA-256 sums in dist/SHA256SUMS.
release:
	@rm -rf dist && mkdir -p dist
	@for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=dist/frutos-$(VERSION)-$$os-$$arch; \
	  echo "build $$out"; \
	  $(STATIC) GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$out ./cmd/frutos || exit 1; \
	done
	@cd dist && sha256sum frutos-* > SHA256SUMS && cat SHA256SUMS

# Installs what the tests need when it is missing (redis-server from
# Debian, the Node interop fixture and the protocol suites from npm), then
# runs every test with the race detector. The protocol suites run first, on
# their own: they expect a 200 ms pong deadline, which the other packages'
# tests (run two at a time) can make a loaded machine miss.
test: deps
	$(GO) test -race -count=1 -timeout 5m ./internal/protocoltest/
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /internal/protocoltest$$)

# deps: redis-server and the Node fixture (installed again when its
# node_modules predates a pinned package, e.g. the streams adapter).
deps: protocol-deps
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (apt-get)"; \
	  (apt-get update -qq >/dev/null 2>&1 || true) && apt-get install -y -qq redis-server >/dev/null; }
	@[ -f testdata/node/node_modules/@socket.io/redis-streams-adapter/package.json ] || npm ci --prefix testdata/node --no-audit --no-fund --loglevel=error
	@[ -d testdata/adminui/node_modules ] || npm ci --prefix testdata/adminui --no-audit --no-fund --loglevel=error

# The official Engine.IO and Socket.IO protocol test suites (mocha, in
# testdata/protocol) against internal/protocoltest's server, with the spec
# output of both (about 15 s). Part of `make test` too.
protocol: protocol-deps
	FRUTOS_REQUIRE_NODE=1 $(GO) test -race -count=1 -v -run '^TestProtocolSuites$$' ./internal/protocoltest/

protocol-deps:
	@[ -d testdata/protocol/node_modules ] || npm ci --prefix testdata/protocol --no-audit --no-fund --loglevel=error

# Benchmarks (numbers for the README; never asserted in tests).
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./cluster/... ./internal/...

# The side-by-side with the Node original under PM2 (writes bench/RESULTS.md;
# a few minutes). Run it on an otherwise idle machine.
sidebyside: deps
	@[ -d bench/node/node_modules ] || npm ci --prefix bench/node --no-audit --no-fund --loglevel=error
	$(GO) run ./bench/cmd/sidebyside

# Fuzz everything that parses outside input, FUZZTIME per target: every
# Fuzz* function of every package is found and run in turn. Crashers land
# in the package's testdata/fuzz and run as regression tests in `make test`.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

# The chaos suite (about 10 minutes): 4 workers under 3,000 reconnecting
# clients and 300 emits/s while faults strike one after another; writes
# bench/CHAOS.md and .json. CHAOS_FLAGS passes options (go run
# ./bench/cmd/chaos -h), e.g. CHAOS_FLAGS="-faults reload,scale".
# CHAOS_TAGS=frutos_dropone builds a worker that drops one event in a
# thousand, to see the report catch it (write that one elsewhere:
# CHAOS_OUT=/tmp/broken.md). Needs root for the disk-full fault. `make
# chaos-streams` runs it with the streams adapter.
CHAOS_FLAGS ?=
CHAOS_TAGS  ?=
CHAOS_OUT   ?= bench/CHAOS.md
chaos: deps
	$(GO) build -tags "$(CHAOS_TAGS)" -ldflags "$(LDFLAGS)" -o bin/frutos-chaos ./cmd/frutos
	$(GO) run ./bench/cmd/chaos -bin bin/frutos-chaos -out $(CHAOS_OUT) $(CHAOS_FLAGS)

# The same suite with the workers on redis.adapter: streams (the emits
# appended to the stream); writes bench/CHAOS-streams.md and .json.
chaos-streams: deps
	$(GO) build -tags "$(CHAOS_TAGS)" -ldflags "$(LDFLAGS)" -o bin/frutos-chaos ./cmd/frutos
	$(GO) run ./bench/cmd/chaos -bin bin/frutos-chaos -adapter streams -out bench/CHAOS-streams.md $(CHAOS_FLAGS)

# The soak: SOAK (30m) of steady load with a reload every 5 minutes and a
# sample of every process each minute; writes bench/SOAK.md and .json and
# says whether anything grows without bound.
SOAK ?= 30m
soak: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/frutos-chaos ./cmd/frutos
	$(GO) run ./bench/cmd/chaos -soak $(SOAK) -bin bin/frutos-chaos -out bench/SOAK.md $(CHAOS_FLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin dist

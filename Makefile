# cosell-mcp — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/mcp-server
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...
# golangci-lint, pinned: `make lint` builds this exact version with go run.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/mcp-server
	@GOPROXY=off GOFLAGS=-mod=mod $(GO) list -m -f '{{.Dir}}' github.com/mark3labs/mcp-go 2>/dev/null | grep -q . || \
		echo "First build: downloading the Go modules (about 400 MB) and compiling them; this takes about 10 minutes on 2 cores."
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mcp-server

.PHONY: run
run: build ## Run the MCP server on stdio (embedded sandbox when no credentials are set)
	./$(BIN) $(ARGS)

.PHONY: sandbox
sandbox: build ## Serve the Pipedrive sandbox standalone on loopback
	./$(BIN) sandbox

.PHONY: test
test: ## Vet, race-enabled tests (unit, MCP round trips, end-to-end), schema drift check
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	# The arrival proof at full size (10^5 requests), which the race detector makes 5x slower.
	$(GO) test -count=1 -run '^TestArrivalsNeverExceedTheLimit$$' ./internal/throttle/

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint (.golangci.yml: depguard layering rules and correctness linters)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOLANGCI_LINT) run $(PKGS)

.PHONY: schemas
schemas: ## Regenerate schemas/<tool>.json from the tool definitions
	$(GO) run ./cmd/mcp-server schemas --dir schemas

.PHONY: docs
docs: ## Regenerate the tool and resource tables in README.md (a test fails when they are stale)
	$(GO) run ./cmd/mcp-server docs

.PHONY: bench
bench: ## Benchmarks: tools/list size, tool-call latency, start-up time, throttle
	$(GO) test -run '^$$' -bench . -benchmem ./cmd/mcp-server ./internal/...

FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: ## Run every fuzz target in turn, FUZZTIME each (default 60s; e.g. FUZZTIME=1000000x); not part of make test
	$(GO) test -run '^$$' -fuzz '^FuzzCSV$$' -fuzztime $(FUZZTIME) ./internal/bulkfile/
	$(GO) test -run '^$$' -fuzz '^FuzzJSON$$' -fuzztime $(FUZZTIME) ./internal/bulkfile/
	$(GO) test -run '^$$' -fuzz '^FuzzXLSX$$' -fuzztime $(FUZZTIME) ./internal/bulkfile/
	$(GO) test -run '^$$' -fuzz '^FuzzWebhookCallback$$' -fuzztime $(FUZZTIME) ./internal/triggers/
	$(GO) test -run '^$$' -fuzz '^FuzzToolArguments$$' -fuzztime $(FUZZTIME) ./tools/

.PHONY: tools
tools: ## Print the tool registry
	$(GO) run ./cmd/mcp-server tools

.PHONY: clean
clean: ## Remove build output
	rm -rf bin $(DIST)

DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
SHA256SUM ?= $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo 'shasum -a 256')

.PHONY: dist
dist: ## Cross-build static binaries for every platform into dist/, with SHA256SUMS
	@mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		out=$(DIST)/mcp-server-$(VERSION)-$$os-$$arch$$ext; echo "  $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/mcp-server; \
	done
	cd $(DIST) && rm -f SHA256SUMS && $(SHA256SUM) mcp-server-$(VERSION)-* > SHA256SUMS
	@echo "$(DIST)/SHA256SUMS: $$(wc -l < $(DIST)/SHA256SUMS) binaries"

# MCPB_VERSION is VERSION as the semantic version a bundle manifest needs.
MCPB_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; /^[0-9]+\.[0-9]+\.[0-9]+/!s/^/0.0.0-/')

.PHONY: mcpb
mcpb: dist ## Claude Desktop extension bundles (.mcpb: manifest.json + the binary), one per platform, into dist/
	@command -v zip >/dev/null || { echo "mcpb: needs zip"; exit 1; }
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; plat=$$os; \
		[ $$os = windows ] && { ext=.exe; plat=win32; }; \
		stage=$$(mktemp -d); mkdir -p $$stage/server; \
		cp $(DIST)/mcp-server-$(VERSION)-$$os-$$arch$$ext $$stage/server/mcp-server$$ext; chmod 755 $$stage/server/mcp-server$$ext; \
		cp LICENSE $$stage/LICENSE; \
		sed -e 's/@VERSION@/$(MCPB_VERSION)/g' -e "s/@PLATFORM@/$$plat/g" -e "s/@EXE@/$$ext/g" packaging/mcpb/manifest.json > $$stage/manifest.json; \
		out=$(CURDIR)/$(DIST)/cosell-mcp-$(VERSION)-$$os-$$arch.mcpb; rm -f $$out; \
		(cd $$stage && zip -q -X -D -r $$out manifest.json server LICENSE); rm -rf $$stage; \
		echo "  $(DIST)/cosell-mcp-$(VERSION)-$$os-$$arch.mcpb"; \
	done

IMAGE     ?= cosell-mcp:$(VERSION)
CONTAINER ?= $(shell for c in buildah podman docker; do command -v $$c >/dev/null 2>&1 && { echo $$c; break; }; done)
# IMAGE_ARGS adds build options, e.g. --build-arg GO_IMAGE=<a Go 1.26 image> or --isolation chroot.
IMAGE_ARGS ?=

.PHONY: image
image: ## Container image of the static binary (Dockerfile; with buildah, podman or docker), tagged cosell-mcp:VERSION
	@[ -n "$(CONTAINER)" ] || { echo "image: no buildah, podman or docker found"; exit 1; }
	$(CONTAINER) build --build-arg VERSION=$(VERSION) $(IMAGE_ARGS) -t $(IMAGE) .

INSPECTOR ?= npx -y @modelcontextprotocol/inspector@2.12.0 --cli

SANDBOX_ENV := env -u PIPEDRIVE_API_TOKEN -u PIPEDRIVE_API_TOKEN_FILE -u PARTNERCENTER_ACCESS_TOKEN \
	-u PARTNERCENTER_ACCESS_TOKEN_FILE -u PARTNERCENTER_CLIENT_ID -u WORKSPAN_APP_USER_ID COSELL_STATE_DIR=$$(mktemp -d)

.PHONY: inspect
inspect: build ## Check the server with the official MCP Inspector CLI (strict schema portability, calls)
	$(SANDBOX_ENV) $(INSPECTOR) --strict --method tools/list ./$(BIN) --include-deprecated > /dev/null
	$(SANDBOX_ENV) $(INSPECTOR) ./$(BIN) --method tools/call --tool-name pipedrive_search_deals --tool-arg term=Contoso > /dev/null
	$(SANDBOX_ENV) $(INSPECTOR) ./$(BIN) --method tools/call --tool-name partnercenter_list_referrals --tool-arg status=New limit=3 > /dev/null
	$(SANDBOX_ENV) $(INSPECTOR) ./$(BIN) --method tools/call --tool-name workspan_list_reports --tool-arg limit=3 > /dev/null
	@echo "inspector: tools/list --strict and tools/call passed"

CONFORMANCE ?= npx -y -p node@22 -p @modelcontextprotocol/conformance@0.1.16 -- conformance
CONFORMANCE_ADDR ?= 127.0.0.1:18931

.PHONY: conformance
conformance: build ## Run the official MCP conformance suite against the HTTP server (baseline in cmd/mcp-server/testdata)
	@state=$$(mktemp -d); out=$$(mktemp -d); \
	$(SANDBOX_ENV) ./$(BIN) --http $(CONFORMANCE_ADDR) --state-db $$state/state.db > $$state/server.log 2>&1 & pid=$$!; \
	if command -v curl >/dev/null; then for i in $$(seq 1 100); do curl -fs http://$(CONFORMANCE_ADDR)/healthz >/dev/null 2>&1 && break; sleep 0.1; done; else sleep 3; fi; \
	$(CONFORMANCE) server --url http://$(CONFORMANCE_ADDR)/mcp --expected-failures cmd/mcp-server/testdata/conformance-expected-failures.yml -o $$out > $$state/conformance.log 2>&1; rc=$$?; \
	sed -e 's/^Total: \(.*\)$$/conformance scenarios: \1 (baseline failures are expected)/' -e 's/\([0-9]\) passed, \([0-9]\)/\1 passed \/ \2/' $$state/conformance.log; \
	kill $$pid; wait $$pid 2>/dev/null; exit $$rc

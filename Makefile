# cosell-mcp — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/mcp-server
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/mcp-server
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
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

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
	rm -rf bin

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

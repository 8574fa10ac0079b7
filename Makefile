# partyline — `make help` lists the targets.
GO      ?= go
PKGS    ?= ./...
FUZZTIME ?= 10s

.PHONY: help run build test test-nats quick race fuzz bench compare lint clean e2e sdk

help: ## show this help
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

run: ## run the server with its embedded defaults (ws :8080, http :8081)
	$(GO) run .

build: ## build ./partyline and ./partyline-bench
	$(GO) build -o partyline .
	$(GO) build -o partyline-bench ./bench

ALLOC_PKGS ?= ./codec/ ./routing/ ./dialect/party/ ./store/
ALLOC_RUN  ?= NoAlloc|DoesNotAllocate|AllocationFree

test: ## the test suite CI runs: go.mod tidy, vet, every package with the race detector, the allocation assertions (which -race skips), the cluster tests against a separate NATS process
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(GO) test -count=1 -run '$(ALLOC_RUN)' $(ALLOC_PKGS)
	bash .ci/external-nats.sh

# The packages with uncommitted changes to .go files (the working tree against
# HEAD, untracked files included); every package when there are none.
QUICK_PKGS ?= $(shell git status --porcelain --untracked-files=all -- '*.go' | awk '{print $$NF}' | \
	while read f; do d=$$(dirname "$$f"); [ -d "$$d" ] && { [ "$$d" = . ] && echo ./ || echo "./$$d/"; }; done | sort -u)

quick: ## edit-test loop: vet and `go test -short` without -race for the packages you changed (QUICK_PKGS=./server/ to choose)
	$(GO) vet $(or $(QUICK_PKGS),./...)
	$(GO) test -short -count=1 $(or $(QUICK_PKGS),./...)

test-nats: ## the cluster tests against a separate NATS process (NATS_URL), as users run it: .ci/external-nats.sh
	bash .ci/external-nats.sh

E2E_BIN ?= $(CURDIR)/tmp/partyline-e2e

sdk: ## rebuild the JS SDK (sdk/js/dist, committed) with tsc; needs `npm ci` in sdk/js
	cd sdk/js && npm run build

e2e: ## JS SDK tests and browser tests (node --test; Chromium at /usr/bin/chromium; `npm ci` in sdk/js and e2e)
	mkdir -p $(dir $(E2E_BIN)) && $(GO) build -o $(E2E_BIN) .
	cd sdk/js && npm run --silent check-dist || { echo "sdk/js: dist is stale (run 'make sdk' and commit it) or test/types.ts does not type-check"; exit 1; }
	cd sdk/js && PARTYLINE_BIN=$(E2E_BIN) node --test --test-concurrency=1 test/*.test.mjs
	cd e2e && PARTYLINE_BIN=$(E2E_BIN) node --test --test-concurrency=1 tests/*.test.mjs

fuzz: ## run every fuzz target briefly (FUZZTIME=10s each)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

bench: ## a short load run against a fresh server (see bench/README.md)
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...
	bash bench/compare.sh --quick

compare: ## partyline vs the gorilla and gws peers, side by side (bench/compare.sh)
	bash bench/compare.sh

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean: ## remove build outputs
	rm -f partyline partyline-bench

# irsa-broker — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
BINARIES := irsa-broker irsa-sidecar irsactl
PKGS := ./...
# Modules nested in this repository, tested and vetted on their own
# (examples/identity-plugin is tested from a copy outside the repository by
# examples/outoftree_test.go, as an integrator builds it).
SUBMODULES := plugins/sdk
TEST_TIMEOUT ?= 30m
BENCH_TIME ?= 1x
IMAGES_DIR ?= $(BIN)/images

.DEFAULT_GOAL := help

##@ Development
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

demo: ## Run the dev stack: broker + IAM/STS simulator + dev OIDC issuer on loopback.
	$(GO) run ./cmd/irsa-broker dev

##@ Build
build: ## Build every binary into bin/.
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do echo "go build ./cmd/$$b"; CGO_ENABLED=0 $(GO) build -o $(BIN)/$$b ./cmd/$$b || exit 1; done

images: ## Build the OCI image archives (irsa-broker, irsa-sidecar, pause) into bin/images/ (IMAGES_DIR) with buildah.
	@bash test/testenv/setup.sh --tools
	IRSA_IMAGES_DIR=$(IMAGES_DIR) bash deploy/images/build.sh

generate: ## Regenerate the plugin protocol code (needs Debian's protobuf-compiler).
	cd plugins/sdk && $(GO) generate .

##@ Quality
testenv: ## Install and build the test cluster: etcd, Kubernetes binaries, CoreDNS, containerd, buildah (cached; idempotent).
	bash test/testenv/setup.sh --node >/dev/null

test: testenv ## Run every test with the race detector (Go, Rego, end-to-end).
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	@for m in $(SUBMODULES); do echo "go test ($$m)"; (cd $$m && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...) || exit 1; done

lint: ## gofmt check, go vet, go.mod tidy and the import rules (internal/archtest).
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	@for m in $(SUBMODULES); do echo "go vet ($$m)"; (cd $$m && $(GO) vet ./... && $(GO) mod tidy -diff) || exit 1; done
	$(GO) test -count=1 ./internal/archtest/

fuzz: ## Run each fuzz target for a short while (FUZZTIME=30s).
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$spec $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$spec || exit 1; \
	  done; done

##@ Performance
bench: ## Run the benchmarks; figures print side by side with their baselines.
	$(GO) test -run '^$$' -bench . -benchmem ./core/policy/ ./core/identity/
	$(GO) test -run '^$$' -bench . -benchtime $(BENCH_TIME) ./core/trust/ ./test/bench/ ./test/e2e/ ./sidecar/...

.PHONY: help demo build images generate testenv test lint fuzz bench

# trailwatch: Elastic detection rules on AWS CloudTrail, inside the log agent.
GO        ?= go
BIN       := bin
RULES     ?= conf/rules
SAMPLE    ?= testdata/cloudtrail/sample.ndjson
FUZZTIME  ?= 30s
PKGS      := ./...

.PHONY: all build run test vet fmt-check tidy-check fuzz bench clean harness

all: build

GOSRC     := $(shell find . -name '*.go' -not -path './bin/*' -not -name '*_test.go' 2>/dev/null) go.mod go.sum

build: $(BIN)/trailwatch $(BIN)/out_trailwatch.so

$(BIN)/trailwatch: $(GOSRC)
	@mkdir -p $(BIN)
	$(GO) build -o $@ ./cmd/trailwatch

# The Fluent Bit output plugin (load with fluent-bit -e bin/out_trailwatch.so).
$(BIN)/out_trailwatch.so: $(GOSRC)
	@mkdir -p $(BIN)
	$(GO) build -buildmode=c-shared -o $@ ./plugin

# The main job: the bundled rules over the bundled sample CloudTrail, alerts
# printed (one JSON document a line), a summary on stderr.
run: $(BIN)/trailwatch
	$(BIN)/trailwatch scan --rules $(RULES) $(SAMPLE)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# go.mod and go.sum are what `go mod tidy` would leave.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# Every test, with the race detector, and the fuzz targets' seed corpora;
# then the C harness drives the built plugin as Fluent Bit's Go proxy does.
test: fmt-check tidy-check vet
	$(GO) test -race -count=1 $(PKGS)
	$(MAKE) harness

# The C harness (needs gcc, no library beyond libc): dlopen()s
# out_trailwatch.so and runs Fluent Bit's call sequence on it, then SIGKILLs
# a process flushing through it 25 times and checks the state file (read
# with the CLI) against the alerts. The chunks it flushes are MessagePack
# that Go writes (plugin/harness/chunks, with tinylib/msgp) into a header.
harness: $(BIN)/out_trailwatch.so $(BIN)/harness $(BIN)/trailwatch
	$(BIN)/harness $(BIN)/out_trailwatch.so $(CURDIR)/conf/rules $(BIN)/trailwatch

$(BIN)/harness_chunks.h: $(filter-out %_test.go,$(wildcard plugin/harness/chunks/*.go)) go.mod go.sum
	@mkdir -p $(BIN)
	$(GO) run ./plugin/harness/chunks -o $@

$(BIN)/harness: plugin/harness/harness.c $(BIN)/harness_chunks.h
	@mkdir -p $(BIN)
	$(CC) -O2 -Wall -Wextra -I$(BIN) -o $@ $< -ldl -lpthread

# Each fuzz target for FUZZTIME (go test runs one fuzz target at a time).
# Inputs such as state files run to tens of KB: minimizing one that finds
# new coverage is bounded, so that the time goes to fuzzing.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  pkg=$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
	    echo "== $$pkg $$t"; $(GO) test -run=NONE -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg; \
	  done; \
	done

# The chunk path against fluent-bit-go's decoder floor, on 200,000
# generated records in Fluent Bit's chunk format (BENCH_RECORDS to change),
# with Elastic's runnable AWS rules (the bundled rules when ../shared is
# absent), and the same path with shared_state against an embedded
# nats-server; the same records as JSON text (NDJSON lines, and strings
# under log as tail without a parser sends them) against the chunk path.
# The last line is `ratio vs decoder floor: <x>`.
BENCH_COUNT ?= 5
# Rounds: each runs every benchmark once, so that the ratios compare runs
# made side by side (a shared machine's speed drifts); the report gives the
# medians of the rounds' figures and of their ratios. The no-match path runs
# 200 chunks a round, so that its allocation count is the steady state's.
bench:
	@mkdir -p $(BIN)
	$(GO) test -c -o $(BIN)/flb.test ./flb/
	@rm -f $(BIN)/bench.txt
	@for i in $$(seq $(BENCH_COUNT)); do \
	  (cd flb && ../$(BIN)/flb.test -test.run=NONE -test.bench='DecoderFloor|ChunkPath|JSONPath|LogPath' -test.benchmem -test.benchtime=2x && \
	   ../$(BIN)/flb.test -test.run=NONE -test.bench='NoMatchPath' -test.benchmem -test.benchtime=200x) \
	  | tee -a $(BIN)/bench.txt | grep -E '^Benchmark' || exit 1; \
	done
	@$(GO) run ./testdata/benchreport < $(BIN)/bench.txt

clean:
	rm -rf $(BIN)

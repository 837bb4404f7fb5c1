# Sensoworks — developer entry points. `make run` and `make test` do all their own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
PYTHON     := /usr/bin/python3
# ccache hits across checkouts in different folders (CI clones elsewhere).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
export CCACHE_MAXSIZE := 5G

.PHONY: deps configure build run test unit asan fuzz-replay fuzz integration bench fmt clean

deps:
	@./scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

configure: $(BUILD)/build.ninja

build: deps configure
	ninja -C $(BUILD) -j $(JOBS) sensoworks
	@echo "built $(BUILD)/sensoworks"

run: build
	SW_DATA_DIR=$${SW_DATA_DIR:-./data} $(BUILD)/sensoworks serve $(if $(CONFIG),--config $(CONFIG))

# Everything CI runs: unit tests (normal and ASan+UBSan), fuzz corpus replay (and a short
# libFuzzer run), black-box integration tests against the real binary.
test: deps configure
	ninja -C $(BUILD) -j $(JOBS)
	$(MAKE) --no-print-directory unit asan fuzz-replay integration
	@echo "make test: all suites passed"

unit:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: | deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSW_SANITIZE=ON -DSW_BUILD_SERVER=OFF -DSW_BUILD_BENCH=OFF >/dev/null
	ninja -C $(ASAN_BUILD) -j $(JOBS) unit_tests fuzz_replay fuzz_replay_query fuzz_replay_mqtt
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer build (clang); replays the seed corpus, then fuzzes for FUZZ_SECONDS (default 20).
FUZZ_SECONDS ?= 20
fuzz-replay: | deps
	CC=clang-16 CXX=clang++-16 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSW_FUZZ=ON >/dev/null
	ninja -C $(FUZZ_BUILD) -j $(JOBS) fuzz_telemetry fuzz_query_string fuzz_mqtt_packet
	@set -o pipefail; for t in telemetry query_string mqtt_packet; do \
	  $(FUZZ_BUILD)/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t || exit 1; \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t && $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 $(FUZZ_BUILD)/corpus-$$t tests/fuzz/corpus/$$t 2>&1 | tail -3 || exit 1; \
	done

fuzz: FUZZ_SECONDS = 600
fuzz: fuzz-replay

integration:
	$(PYTHON) -m pytest tests/integration -q -p no:cacheprovider

bench: build
	ninja -C $(BUILD) -j $(JOBS) sw_loadgen sw_mqtt_loadgen
	./bench/run.sh

fmt:
	find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# The commands people type. CMake does the building underneath.
#   make demo            build a cluster on 127.0.0.1 (a JobManager, two
#                        TaskManagers), run the grep job on it, stop it
#                        (scripts/demo-cluster.sh)
#   make hello           build and run the hello example (RPC in one
#                        process, then across two)
#   make test            build and run the whole test suite
#   make bench           build and run the benchmarks beside their peers
#                        (BENCH="name..." for some of them)
#   make check-sanitize  the suite under ASan+UBSan, then under TSan
#   make install         install under PREFIX (default /usr/local): the
#                        library, its headers and the programs of apps/
#   make format          clang-format every C source in the tree
#   make check-layers    refuse includes that go up the layer order, include
#                        circles between folders of src/, and private headers
#                        of src/ used outside src/, tests/, fuzz/
#                        (scripts/check-layers.sh; its --self-test runs first)
#   make check-format    fail on any C file clang-format would change
#                        (scripts/check-format.sh; `make format` fixes it)

BUILD   ?= build
PREFIX  ?= /usr/local
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE   ?= cmake
CTEST   ?= ctest
CTEST_ARGS ?=

.PHONY: all demo hello test bench check-sanitize check-asan check-tsan install format check-layers check-format fuzz fuzz-short clean deps

FUZZ_SECONDS ?= 60

all: deps-test
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD) -j $(JOBS)

deps-%:
	@scripts/deps.sh $*

demo: deps-demo
	$(CMAKE) -S . -B $(BUILD)-release -DCMAKE_BUILD_TYPE=Release -DFLING_BUILD_TESTS=OFF
	$(CMAKE) --build $(BUILD)-release -j $(JOBS) --target fling fling-jobmanager fling-taskmanager
	scripts/demo-cluster.sh $(BUILD)-release

hello: deps-demo
	$(CMAKE) -S . -B $(BUILD)-release -DCMAKE_BUILD_TYPE=Release -DFLING_BUILD_TESTS=OFF
	$(CMAKE) --build $(BUILD)-release -j $(JOBS) --target fling_demo
	$(BUILD)-release/examples/fling_demo

test: deps-test
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	$(CMAKE) --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && $(CTEST) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: deps-bench
	$(CMAKE) -S . -B $(BUILD)-release -DCMAKE_BUILD_TYPE=Release -DFLING_BUILD_BENCH=ON -DFLING_BUILD_TESTS=OFF -DFLING_LTO=ON
	$(CMAKE) --build $(BUILD)-release -j $(JOBS) --target bench_programs
	scripts/bench.sh $(BUILD)-release $(BENCH)

check-sanitize: check-asan check-tsan fuzz-short

check-asan: deps-sanitize
	$(CMAKE) -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DFLING_SANITIZE=address -DCMAKE_C_COMPILER=clang
	$(CMAKE) --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(CTEST) --output-on-failure -j $(JOBS) -L 'unit|stress' $(CTEST_ARGS)

check-tsan: deps-sanitize
	$(CMAKE) -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLING_SANITIZE=thread -DCMAKE_C_COMPILER=clang
	$(CMAKE) --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	    $(CTEST) --output-on-failure -j $(JOBS) -L 'unit|stress' $(CTEST_ARGS)

# libFuzzer on the frame decoder and handshake metadata, on a connection's
# byte stream with its handshake rules (src/remote/rx.c), on the TLS engine
# and a TLS connection's records becoming frames (src/remote/tls.c), on
# addresses and port ranges, on the configuration file, on job files
# (apps/job/) and on source.text's line reader (apps/task/) (clang). New
# inputs go to $(BUILD)-fuzz/corpus-*; fuzz/corpus/ holds the seeds.
fuzz: deps-fuzz
	$(CMAKE) -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	    -DFLING_BUILD_FUZZ=ON -DFLING_BUILD_TESTS=OFF -DFLING_BUILD_EXAMPLES=OFF
	$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS) --target frame_fuzz address_fuzz stream_fuzz config_fuzz \
	    jobfile_fuzz
	mkdir -p $(BUILD)-fuzz/corpus-frame $(BUILD)-fuzz/corpus-address $(BUILD)-fuzz/corpus-stream \
	    $(BUILD)-fuzz/corpus-config $(BUILD)-fuzz/corpus-jobfile
	$(BUILD)-fuzz/fuzz/frame_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-frame fuzz/corpus/frame
	$(BUILD)-fuzz/fuzz/address_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-address fuzz/corpus/address
	$(BUILD)-fuzz/fuzz/stream_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-stream fuzz/corpus/stream
	$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS) --target tls_fuzz
	mkdir -p $(BUILD)-fuzz/corpus-tls
	$(BUILD)-fuzz/fuzz/tls_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-tls fuzz/corpus/tls
	$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS) --target lines_fuzz
	mkdir -p $(BUILD)-fuzz/corpus-lines
	$(BUILD)-fuzz/fuzz/lines_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-lines fuzz/corpus/lines
	$(BUILD)-fuzz/fuzz/config_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-config fuzz/corpus/config
	$(BUILD)-fuzz/fuzz/jobfile_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-jobfile fuzz/corpus/jobfile
	$(CMAKE) --build $(BUILD)-fuzz -j $(JOBS) --target jobstore_fuzz
	mkdir -p $(BUILD)-fuzz/corpus-jobstore
	$(BUILD)-fuzz/fuzz/jobstore_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(BUILD)-fuzz/corpus-jobstore fuzz/corpus/jobstore

# The short run that check-sanitize includes.
fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=15

# The installed library is built without LTO: an archive carrying one gcc's
# LTO data may not link with another gcc's -flto (CMakeLists.txt, FLING_LTO).
install: deps-install
	$(CMAKE) -S . -B $(BUILD)-install -DCMAKE_BUILD_TYPE=Release -DFLING_BUILD_TESTS=OFF -DFLING_LTO=OFF -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	$(CMAKE) --build $(BUILD)-install -j $(JOBS)
	$(CMAKE) --install $(BUILD)-install --prefix $(PREFIX)

format: deps-format
	git ls-files '*.c' '*.h' | xargs clang-format -i

# The self-test first: a check that cannot fail proves nothing.
check-layers:
	scripts/check-layers.sh --self-test
	scripts/check-layers.sh

check-format: deps-format
	scripts/check-format.sh

clean:
	rm -rf $(BUILD) $(BUILD)-release $(BUILD)-asan $(BUILD)-tsan

# Makefile - builds liboryx (static + shared), the tests, the benchmarks, the examples and bin/oryx.
#
#   make            library, examples, programs            make test       the Criterion test suite
#   make run        train the default Oryx on the bundled text, print a sample
#   make test-asan  the same tests under ASan + UBSan      make bench      benchmarks (medians, ratios)
#   make deps       install missing Debian packages        make install    PREFIX=/usr/local (default)
#   make fuzz       the libFuzzer harnesses, FUZZ_SECONDS each (default 60)
#   make clean
#
# Every target that builds first runs `make deps`, which installs what is missing (apt-get as root,
# otherwise it prints the exact command and stops), so a fresh Debian machine needs nothing else.

PREFIX  ?= /usr/local
BUILD   ?= build
SAN     ?=
ARCH    := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# BLIS: Debian's OpenMP build (libblis4-openmp); it ships no .pc file, so name its folders directly and
# pin the run-time path so the OpenMP variant is used whatever the alternatives point to.
BLIS_INC := /usr/include/$(ARCH)/blis-openmp
BLIS_LIB := /usr/lib/$(ARCH)/blis-openmp

PKGS     := libcjson libpng
# -O3 -march=native: the inner loops are written for the auto-vectoriser; -fno-math-errno lets it
# vectorise sqrtf/expf calls; we never read errno.
OPT      := -O3 -march=native -fno-math-errno
ifeq ($(SAN),1)
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
# make fuzz builds everything with clang for libFuzzer (SAN=fuzz, in build/fuzz): coverage + ASan + UBSan.
# At -O1 clang does not vectorise the `omp simd` loops and says so: -Wno-pass-failed (speed is not the point).
ifeq ($(SAN),fuzz)
CC       := clang
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
            -fno-sanitize-recover=undefined -Wno-pass-failed
endif
CFLAGS   ?=
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) -fopenmp -fPIC -I. -isystem $(BLIS_INC) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := -L$(BLIS_LIB) -Wl,-rpath,$(BLIS_LIB) -lblis $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
SANFLAGS := -fsanitize=address,undefined
LDFLAGS  := -fopenmp $(if $(filter 1 fuzz,$(SAN)),$(SANFLAGS))

LIB_SRC  := $(wildcard tensor/*.c plot/*.c autograd/*.c nn/*.c optim/*.c models/oryx/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_SRC:= $(wildcard bench/*.c)
EX_SRC   := $(wildcard examples/*.c)
CLI_SRC  := $(wildcard cli/*.c)
FUZZ_SRC := $(wildcard fuzz/*.c)
HEADERS  := $(wildcard tensor/*.h plot/*.h autograd/*.h nn/*.h optim/*.h models/oryx/*.h)
# Headers that say "internal" (no public header includes them) are not installed.
INTERNAL_HEADERS := autograd/lanes.h nn/chunk.h tensor/safetensors_common.h
PUBLIC_HEADERS   := $(filter-out $(INTERNAL_HEADERS),$(HEADERS))

SOVER    := 0
VERSION  := 0.1.0
STATIC   := $(BUILD)/liboryx.a
SHARED   := $(BUILD)/liboryx.so.$(VERSION)
TESTBIN  := $(BUILD)/tests/oryx-tests
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
EXAMPLES := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
# bin/oryx; the sanitizer build puts its own copy in $(BUILD)/bin so the two never overwrite each other.
CLI_BIN  := $(if $(filter 1,$(SAN)),$(BUILD)/bin/oryx,bin/oryx)
CLI      := $(if $(CLI_SRC),$(CLI_BIN))

.PHONY: all run test test-run test-asan bench deps install clean fuzz fuzz-run
# Keep object files of programs (make would otherwise delete them as intermediates and rebuild next time).
.SECONDARY: $(patsubst %.c,$(BUILD)/obj/%.o,$(BENCH_SRC) $(EX_SRC) $(CLI_SRC) $(FUZZ_SRC))
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build-all

build-all: $(STATIC) $(SHARED) $(EXAMPLES) $(CLI)

deps:
	@sh scripts/deps.sh

# -MMD -MP: the compiler writes each object's header dependencies beside it (build/obj/**/*.d), so touching
# a header rebuilds exactly the objects that include it (a test helper header rebuilds only tests). An object
# whose .d file is missing (a build tree from before) is rebuilt once, through the empty rule for .d files.
$(BUILD)/obj/%.o: %.c $(BUILD)/obj/%.d
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.d: ;

-include $(patsubst %.c,$(BUILD)/obj/%.d,$(LIB_SRC) $(TEST_SRC) $(BENCH_SRC) $(EX_SRC) $(CLI_SRC) $(FUZZ_SRC))

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,liboryx.so.$(SOVER) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	ln -sf liboryx.so.$(VERSION) $(BUILD)/liboryx.so.$(SOVER)
	ln -sf liboryx.so.$(SOVER) $(BUILD)/liboryx.so

$(TESTBIN): $(TEST_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(LDLIBS) -lcriterion

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(CLI_BIN): $(CLI_SRC:%.c=$(BUILD)/obj/%.o) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC) $(LDLIBS)

# The README's first command: build, train the default Oryx on the bundled Shakespeare (a few minutes on
# 2 cores), then print a sample and where the files are.
run: all
	bin/oryx train --out runs/oryx --force
	@echo
	bin/oryx generate --ckpt runs/oryx --prompt "ROMEO:" --tokens 400 --modes every:8 \
	    --mode-map-png runs/oryx.modes.png
	@echo
	bin/oryx attention --ckpt runs/oryx --prompt "ROMEO: But soft, what light through yonder window breaks?" \
	    --out runs/oryx.attention.png
	@echo
	@echo "checkpoint:  runs/oryx.safetensors (training state runs/oryx.state.safetensors)"
	@echo "pictures:    runs/oryx.loss.png (loss curves), runs/oryx.modes.png (mode map of the sample)," \
	      "runs/oryx.attention.png (one attention head)"
	@echo "history:     runs/oryx.loss.csv; inspect the model with: bin/oryx info --ckpt runs/oryx"

# The test suite. Criterion runs each test in its own process, two at a time (the machine's cores);
# each test process then uses one OpenMP/BLIS thread unless a test sets its own count.
test: deps
	@$(MAKE) --no-print-directory test-run

# The examples and the program are prerequisites too: tests/test_examples.c runs the examples and
# tests/test_cli.c runs the program named by OX_ORYX_BIN.
# tests/test_install.c runs `make install BUILD=$(BUILD) SAN=$(SAN)` from OX_REPO into a temporary prefix, so
# the shared library is a prerequisite too (the install then builds nothing).
test-run: $(TESTBIN) $(EXAMPLES) $(CLI) $(SHARED)
	OX_ORYX_BIN=$(CLI_BIN) OX_REPO=$(CURDIR) OX_BUILD=$(BUILD) OX_SAN=$(SAN) \
	    OX_TEST_THREADS=$${OX_TEST_THREADS:-1} $(TESTBIN) --jobs 2 $(TEST_ARGS)

# Same tests, built with AddressSanitizer + UndefinedBehaviorSanitizer in build/asan, at smaller sizes
# where a test has a size knob (OX_TEST_SMALL=1).
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 test-run \
	    TEST_ARGS="$(TEST_ARGS)" OX_TEST_SMALL=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1

# The libFuzzer harnesses of fuzz/ (clang, installed by scripts/deps.sh fuzz), each run for FUZZ_SECONDS on
# a working copy of its checked-in seed corpus fuzz/corpus/<name> (build/fuzz/corpus/<name>; the seeds are
# not modified). A crash, leak, timeout or out-of-memory stops make with the reproducer in build/fuzz.
FUZZ_SECONDS ?= 60
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=%)
fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory BUILD=build/fuzz SAN=fuzz fuzz-run

fuzz-run: $(FUZZERS:%=$(BUILD)/fuzz/%)
	@for f in $(FUZZERS); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$f $(BUILD)/fuzz/artifacts; \
	    echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	    ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/artifacts/$$f- $(BUILD)/fuzz/corpus/$$f fuzz/corpus/$$f \
	        > $(BUILD)/fuzz/$$f.log 2>&1 || { tail -40 $(BUILD)/fuzz/$$f.log; exit 1; }; \
	    grep -E "^stat::number_of_executed_units|^Done" $(BUILD)/fuzz/$$f.log; \
	done

$(BUILD)/fuzz/%: $(BUILD)/obj/fuzz/%.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(STATIC) $(LDLIBS)

bench: deps
	@$(MAKE) --no-print-directory $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/oryx
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf liboryx.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/liboryx.so.$(SOVER)
	ln -sf liboryx.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/liboryx.so
	for h in $(PUBLIC_HEADERS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/oryx/$$h; done
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@BLIS_LIB@|$(BLIS_LIB)|g' \
	    scripts/oryx.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/oryx.pc

clean:
	rm -rf build bin

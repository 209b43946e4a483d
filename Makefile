# ultramoe build. One Makefile; probes OpenMP, OpenBLAS, MPI and cJSON and can switch each off:
#   make USE_OPENMP=0 USE_BLAS=0 USE_MPI=0
# Targets: all (./umoe), test, run, bench, asan, debug, clean.
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2 -march=native
SAN     ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iinclude $(OPT) $(SAN) -g
LDLIBS  += -lm -lpthread $(SAN)

H := \#
probe = $(shell printf '$(H)include <$(1)>\nint main(void){return 0;}\n' | $(CC) -x c - $(2) -o /dev/null >/dev/null 2>&1 && echo 1 || echo 0)

USE_OPENMP ?= $(call probe,omp.h,-fopenmp)
USE_BLAS   ?= $(call probe,cblas.h,-lopenblas)
USE_CJSON  ?= $(call probe,cjson/cJSON.h,-lcjson)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
USE_MPI    ?= $(if $(MPI_LIBS),1,0)

ifeq ($(USE_CJSON),0)
$(error cJSON not found: install libcjson-dev (apt-get install libcjson-dev); ultramoe reads every spec as JSON)
endif
LDLIBS += -lcjson
ifeq ($(USE_OPENMP),1)
CFLAGS += -fopenmp -DUMOE_OPENMP=1
LDLIBS += -fopenmp
endif
ifeq ($(USE_BLAS),1)
CFLAGS += -DUMOE_BLAS=1
LDLIBS += -lopenblas
endif
ifeq ($(USE_MPI),1)
CFLAGS += $(MPI_CFLAGS) -DUMOE_MPI=1
LDLIBS += $(MPI_LIBS)
endif

LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB      := $(BUILD)/libumoe.a

.PHONY: all test run bench asan debug clean
all: umoe

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

umoe: $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -o $@

test: umoe $(TEST_BIN)
	@BUILD=$(BUILD) USE_MPI=$(USE_MPI) sh tests/run.sh

run: umoe
	./umoe plan pangu-ultra-moe-718b ascend-910b-6144 --top 10

bench: umoe $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer" SAN="-fsanitize=address,undefined" test

debug:
	$(MAKE) BUILD=build/debug OPT="-O0 -DUMOE_DEBUG=1" all

clean:
	rm -rf build umoe

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# MPI test programs (tests/mpi/*.c): built only with MPI, run under mpirun by tests/mpi/test_*.sh.
MPI_TEST_BIN := $(if $(filter 1,$(USE_MPI)),$(patsubst tests/mpi/%.c,$(BUILD)/mpitests/%,$(sort $(wildcard tests/mpi/*.c))))
$(BUILD)/mpitests/%: tests/mpi/%.c tests/unit/test.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(LIB) $(LDLIBS) -o $@
test: $(MPI_TEST_BIN)

# AdamW's sqrtf never sees a negative value; without errno handling its loop vectorises (same bits)
$(BUILD)/src/nn/adamw.o: CFLAGS += -fno-math-errno

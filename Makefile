# Parley: one Makefile builds every binary, the tests and the benchmarks.
SERVICES := gateway customer-svc conversation-svc messaging-svc media-svc inbound-svc
BUILD    ?= build
PKGS     := libmicrohttpd libcurl jansson rdkafka libpq openssl
CC       ?= gcc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wcast-qual -fno-common $(EXTRA_CFLAGS)
CPPFLAGS += -Icommon/include -Icommon $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
obj       = $(patsubst %.c,$(BUILD)/%.o,$(1))
COMMON_OBJ := $(call obj,$(wildcard common/*.c))
COMMON_SQL := $(sort $(wildcard common/sql/*.sql))
ALL_OBJ  := $(COMMON_OBJ)
PYTEST   ?= python3 -m pytest

all: $(SERVICES:%=$(BUILD)/bin/%)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libparley.a: $(COMMON_OBJ)
	$(AR) rcs $@ $^

# Each binary embeds common/sql then its own sql/ migrations.
define service_rule
SVC_OBJ_$(1) := $$(call obj,$$(wildcard $(1)/*.c)) $(BUILD)/gen/$(1)/migrations.o
SVC_SQL_$(1) := $(COMMON_SQL) $$(sort $$(wildcard $(1)/sql/*.sql))
ALL_OBJ += $$(SVC_OBJ_$(1))
$(BUILD)/gen/$(1)/migrations.c: $$(SVC_SQL_$(1)) tools/embed_sql.sh
	@mkdir -p $$(@D)
	tools/embed_sql.sh $$@ $$(SVC_SQL_$(1))
$(BUILD)/gen/$(1)/migrations.o: $(BUILD)/gen/$(1)/migrations.c
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) -Wno-missing-prototypes -c $$< -o $$@
$(BUILD)/bin/$(1): $$(SVC_OBJ_$(1)) $(BUILD)/libparley.a
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) $$(EXTRA_LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

# Unit tests: tests/unit/<dir>/test_<x>.c, each its own cmocka binary linked with libparley.
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))
ALL_OBJ  += $(call obj,$(UNIT_SRC))
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(BUILD)/libparley.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(EXTRA_LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

asan:   # its own tree, so sanitized and plain objects never mix
	$(MAKE) BUILD=build/asan EXTRA_CFLAGS='-O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=all' EXTRA_LDFLAGS='-fsanitize=address,undefined' all unit http-test

check-headers:
	@set -e; for h in common/include/parley/*.h; do \
	    echo "#include \"parley/$$(basename $$h)\"" | $(CC) $(CPPFLAGS) $(CFLAGS) -x c -c - -o /dev/null; \
	done; echo "headers compile on their own"

up:
	deploy/local/up.sh

down:
	deploy/local/down.sh

# The same set-up as `up`, then every test, then the stack stops (also on failure).
test:
	deploy/local/install.sh
	$(MAKE) all check-headers
	$(MAKE) k8s-test
	$(MAKE) unit http-test
	$(MAKE) asan
	deploy/local/up.sh
	$(MAKE) db-test && $(PYTEST) -q tests/system; rc=$$?; deploy/local/down.sh; exit $$rc

bench:
	bench/customer.sh
	bench/messages.sh
	bench/media.sh
	bench/gateway.sh
	bench/webhooks.sh

clean:
	rm -rf $(BUILD)

-include $(ALL_OBJ:.o=.d)
.PHONY: all asan unit test up down bench check-headers clean

# Fuzz targets: tests/fuzz/fuzz_<parser>.c with libFuzzer, each run for FUZZ_SECONDS on its corpus.
FUZZ_SECONDS ?= 30
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_LIB  := $(filter-out common/stub.c common/service.c,$(wildcard common/*.c))
# The workspace's real channel payloads seed the WhatsApp and Telegram normalisers' fuzzing.
FUZZ_CHANNEL_SEEDS ?= $(wildcard ../shared/fixtures/channels)
fuzz:
	@mkdir -p $(BUILD)/fuzz
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	    clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined $(CPPFLAGS) \
	        $$f $(FUZZ_LIB) $(LDLIBS) -o $(BUILD)/fuzz/$$n; \
	    c=tests/fuzz/corpus/$${n#fuzz_}; w=$(BUILD)/fuzz/corpus-$${n#fuzz_}; mkdir -p $$w; \
	    echo "== $$n for $(FUZZ_SECONDS)s"; \
	    x=; case $$n in fuzz_whatsapp|fuzz_telegram) x="$(FUZZ_CHANNEL_SEEDS)";; esac; \
	    $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $$w $$c $$x 2>&1 | tail -3; \
	done
.PHONY: fuzz

# HTTP tests: tests/http/test_<x>.c, the real common/http.c in-process on port 0, driven by libcurl.
HTTP_SRC := $(wildcard tests/http/test_*.c)
HTTP_BIN := $(patsubst %.c,$(BUILD)/%,$(HTTP_SRC))
ALL_OBJ  += $(call obj,$(HTTP_SRC))
$(BUILD)/tests/http/%: $(BUILD)/tests/http/%.o $(BUILD)/libparley.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(EXTRA_LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

http-test: $(HTTP_BIN)
	@set -e; for t in $(HTTP_BIN); do echo "== $$t"; $$t; done
.PHONY: http-test

# Database tests: tests/db/test_<x>.c, libparley against the real PostgreSQL of the local stack.
DB_SRC := $(wildcard tests/db/test_*.c)
DB_BIN := $(patsubst %.c,$(BUILD)/%,$(DB_SRC))
ALL_OBJ += $(call obj,$(DB_SRC))
$(BUILD)/tests/db/%: $(BUILD)/tests/db/%.o $(BUILD)/libparley.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(EXTRA_LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

db-test: $(DB_BIN)
	@set -e; for t in $(DB_BIN); do echo "== $$t"; $$t; done
.PHONY: db-test

# Kubernetes manifests and the image recipe, offline (tests/k8s): no cluster, no Docker.
k8s-test: all
	k=$$(tests/k8s/ensure-kubectl.sh) && KUBECTL=$$k $(PYTEST) -q tests/k8s
.PHONY: k8s-test

# The gateway serves docs/openapi.yaml from a copy linked into its binary (gateway/openapi.c).
$(BUILD)/gen/gateway/openapi_doc.o: docs/openapi.yaml
	@mkdir -p $(@D)
	printf '\t.section .rodata\n\t.globl gw_openapi_doc\ngw_openapi_doc:\n\t.incbin "%s"\n\t.globl gw_openapi_doc_end\ngw_openapi_doc_end:\n\t.section .note.GNU-stack,"",@progbits\n' $< | $(CC) -x assembler -c - -o $@
$(BUILD)/bin/gateway: $(BUILD)/gen/gateway/openapi_doc.o

# Benchmark tools (not product binaries, not in `all`): bench/<name>.c, run by bench/<name>.sh.
$(BUILD)/bin/bench-webhooks: $(BUILD)/bench/webhooks.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(EXTRA_LDFLAGS) $^ $(LDLIBS) -o $@
-include $(BUILD)/bench/webhooks.d
$(BUILD)/bin/bench-proxy-floor: $(BUILD)/bench/proxy_floor.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(EXTRA_LDFLAGS) $^ $(LDLIBS) -o $@
-include $(BUILD)/bench/proxy_floor.d

# llm_gateway — PGXS build.
#
# The version is defined once, in llm_gateway.control (default_version); the
# install script name and the C code's EXTVERSION are derived from it here.

EXTENSION  = llm_gateway
EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = llm_gateway
OBJS = \
	src/llm_gateway.o \
	src/guc.o \
	src/crypto.o \
	src/key_source.o \
	src/rotate.o \
	src/url_policy.o \
	src/log_redact.o \
	src/http.o \
	src/json_extract.o \
	src/request.o \
	src/spi_util.o \
	src/catalog.o \
	src/catalog_cache.o \
	src/plan.o \
	src/provider.o \
	src/provider_common.o \
	src/provider_openai.o \
	src/provider_anthropic.o \
	src/provider_gemini.o \
	src/pricing.o \
	src/shmem.o \
	src/spend.o \
	src/spend_flush.o \
	src/worker.o \
	src/maintenance.o \
	src/limits.o \
	src/events.o \
	src/router.o \
	src/cache.o \
	src/cache_key.o \
	src/cache_read.o \
	src/status.o \
	src/ledger.o \
	src/privacy.o \
	src/result.o \
	src/json_out.o \
	src/guc_account.o \
	src/isolation.o \
	src/account_catalog.o \
	src/account.o \
	src/account_settle.o \
	src/budget.o \
	src/budget_status.o \
	src/quota.o \
	src/alerts.o \
	src/webhook.o \
	src/currency.o \
	src/duties.o \
	src/histogram.o \
	src/api.o

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(wildcard sql/$(EXTENSION)--*--*.sql)

# PostgreSQL headers as system headers: -Wextra judges our code, not theirs.
PG_CPPFLAGS = -I$(srcdir)/src -DEXTVERSION=\"$(EXTVERSION)\" \
	-isystem $(shell $(PG_CONFIG) --includedir-server)
SHLIB_LINK = -lcurl -lcrypto

# pg_regress: one file per feature, in a temporary instance that preloads the
# library.  test/tmp/regress.conf is written by test/run-tests.sh (it carries
# the port of the mock provider the harness started).
REGRESS = setup admin crypto validation complete provider_errors anthropic gemini \
	spend routing cache \
	pricing budgets \
	permissions timeout analytics catalog_cache secrets bad_input privacy
REGRESS_OPTS = --temp-config=test/tmp/regress.conf --temp-instance=./tmp_check \
	--no-locale --encoding=UTF8 \
	--load-extension=plpgsql

# TAP tests start their own cluster and mock provider.
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
PROVE_FLAGS = -I test/t

EXTRA_CLEAN = test/tmp results regression.diffs regression.out tmp_check log

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: every object depends on every
# header (a stale object after a struct change corrupts shared memory).
$(OBJS): $(wildcard src/*.h)

# The install script is the concatenation of sql/install/*.sql, in order.
INSTALL_PARTS = $(sort $(wildcard sql/install/*.sql))

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_PARTS) $(EXTENSION).control
	cat $(INSTALL_PARTS) > $@

# pg_regress and the TAP suite separately, so the harness can count both even
# when the first one fails.
.PHONY: regress-installcheck tap-installcheck test demo bench bench-peers fuzz deps format format-check
# Under valgrind (make test VALGRIND=1) the timing of timeout.sql cannot hold.
regress-installcheck:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(if $(VALGRIND),$(filter-out timeout,$(REGRESS)),$(REGRESS))

tap-installcheck:
	$(prove_installcheck)

# The two commands of the README.
test:
	SANITIZE=$(SANITIZE) VALGRIND=$(VALGRIND) bash test/run-tests.sh

demo:
	bash test/demo.sh

bench:
	bash test/bench.sh

# make bench, then the Portkey gateway (from npm) against the same upstream.
bench-peers:
	BENCH_PEERS=1 bash test/bench.sh

# libFuzzer targets for the reply parsers and the cache key (test/fuzz).
fuzz:
	bash test/fuzz/run.sh run

deps:
	bash test/deps.sh

format:
	clang-format -i src/*.c src/*.h

format-check:
	bash test/format-check.sh

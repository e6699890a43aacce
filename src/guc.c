/*
 * guc.c — the llm_gateway.* settings.
 *
 * Each setting has bounds and the narrowest context that still lets an
 * operator do their job:
 *   - security-relevant ones (master key, key file, CA bundle, size caps) can
 *     only be changed by a superuser, and the master key is never shown, not
 *     even to a superuser (its show hook prints whether it is set);
 *   - timeouts are per-session tunables, because a caller may legitimately
 *     want a shorter wait, and they only ever affect that caller's own calls.
 */
#include "account.h"
#include "catalog_cache.h"

bool  lg_enabled = true;
char *lg_master_key = NULL;
char *lg_master_key_file = NULL;
char *lg_previous_master_key = NULL;
char *lg_previous_master_key_file = NULL;
char *lg_allowed_http_hosts = NULL;
int   lg_timeout_ms = 60000;
int   lg_connect_timeout_ms = 10000;
int   lg_max_response_kb = 8 * 1024;
int   lg_max_request_kb = 8 * 1024;
char *lg_ca_bundle = NULL;
char *lg_database = NULL;
int   lg_worker_interval_ms = 1000;
int   lg_spend_queue_size = 1024;
int   lg_transactional_ledger_rows = 0;
int   lg_spend_write_delay_ms = 5;
int   lg_max_retries = 2;
int   lg_retry_backoff_ms = 250;
int   lg_retry_after_max_ms = 10000;
bool  lg_cache_enabled = true;
int   lg_cache_ttl_s = 3600;
int   lg_cache_max_kb = 256 * 1024;

static const char *
show_master_key(void)
{
	return (lg_master_key && lg_master_key[0]) ? "(set)" : "(not set)";
}

static const char *
show_previous_master_key(void)
{
	return (lg_previous_master_key && lg_previous_master_key[0]) ? "(set)"
																 : "(not set)";
}

void
lg_define_settings(void)
{
	DefineCustomBoolVariable("llm_gateway.enabled",
							 "Allows llm_complete() to call providers.",
							 "When off, every call is refused with SQLSTATE "
							 "LG006.",
							 &lg_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomStringVariable(
		"llm_gateway.master_key",
		"Master key protecting the stored provider API keys.",
		"Any string; 32 random bytes in hex (openssl rand -hex 32) are "
		"recommended. "
		"Never shown: SHOW prints only whether it is set.",
		&lg_master_key,
		"",
		PGC_SIGHUP,
		GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
		NULL,
		NULL,
		show_master_key);

	DefineCustomStringVariable("llm_gateway.master_key_file",
							   "File holding the master key, used when "
							   "llm_gateway.master_key is empty.",
							   "Must be owned by the server user and not "
							   "readable by group or others.",
							   &lg_master_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomStringVariable(
		"llm_gateway.previous_master_key",
		"The master key being rotated away from.",
		"While set, keys sealed under it still open; "
		"llm_rotate_master_key() re-seals them under llm_gateway.master_key. "
		"Never shown.",
		&lg_previous_master_key,
		"",
		PGC_SIGHUP,
		GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
		NULL,
		NULL,
		show_previous_master_key);

	DefineCustomStringVariable("llm_gateway.previous_master_key_file",
							   "File holding the master key being rotated "
							   "away from, used when "
							   "llm_gateway.previous_master_key is empty.",
							   "Must be private to the server, like "
							   "llm_gateway.master_key_file.",
							   &lg_previous_master_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomStringVariable(
		"llm_gateway.allowed_http_hosts",
		"Hosts other than loopback the gateway may reach over plain http.",
		"Comma-separated host names or addresses; every other remote host "
		"must be reached over https.",
		&lg_allowed_http_hosts,
		"",
		PGC_SIGHUP,
		0,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable("llm_gateway.timeout_ms",
							"Default total time allowed for one provider "
							"request.",
							"A provider's timeout_ms or the call's timeout_ms "
							"option takes precedence.",
							&lg_timeout_ms,
							60000,
							100,
							3600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("llm_gateway.connect_timeout_ms",
							"Default time allowed to connect to a provider.",
							NULL,
							&lg_connect_timeout_ms,
							10000,
							100,
							600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("llm_gateway.max_response_size",
							"Largest provider response body accepted.",
							"Larger responses are refused with SQLSTATE "
							"LG027.",
							&lg_max_response_kb,
							8 * 1024,
							64,
							1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("llm_gateway.max_request_size",
							"Largest total size of the messages of one call.",
							"Larger requests are refused with SQLSTATE LG010 "
							"before any provider is called.",
							&lg_max_request_kb,
							8 * 1024,
							1,
							1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);

	DefineCustomStringVariable(
		"llm_gateway.ca_bundle",
		"CA certificate bundle used to verify providers' TLS certificates.",
		"Empty means the system's default bundle.  Verification is always on.",
		&lg_ca_bundle,
		"",
		PGC_SIGHUP,
		GUC_SUPERUSER_ONLY,
		NULL,
		NULL,
		NULL);

	DefineCustomStringVariable(
		"llm_gateway.database",
		"Database the llm_gateway background worker connects to.",
		"Spend waiting for other databases is written by short-lived "
		"workers started on demand.",
		&lg_database,
		"postgres",
		PGC_POSTMASTER,
		0,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable(
		"llm_gateway.worker_interval",
		"Time between two maintenance passes of the background worker.",
		"Spend to write wakes the worker at once, whatever this says.",
		&lg_worker_interval_ms,
		1000,
		10,
		3600000,
		PGC_SIGHUP,
		GUC_UNIT_MS,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable(
		"llm_gateway.catalog_cache_ttl",
		"Longest time a backend reuses what the catalog said about a "
		"tenant, agent and model.",
		"Configuration changes reach every backend at their commit; "
		"this bounds the few that no trigger sees.  0 reads the catalog "
		"on every call.",
		&lg_catalog_cache_ttl_ms,
		10000,
		0,
		3600000,
		PGC_SUSET,
		GUC_UNIT_MS,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable(
		"llm_gateway.spend_write_delay",
		"Time the worker, woken for ledger rows, waits for more before "
		"writing them together.",
		"Longer batches cost less per row; a row reaches the ledger about "
		"this much after its call.",
		&lg_spend_write_delay_ms,
		5,
		0,
		1000,
		PGC_SIGHUP,
		GUC_UNIT_MS,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable(
		"llm_gateway.spend_queue_size",
		"Slots in shared memory for calls whose ledger rows are not "
		"written yet.",
		"Each slot takes about 7 kB.  Calls wait, then fail with "
		"SQLSTATE LG060, when all are taken.",
		&lg_spend_queue_size,
		1024,
		16,
		1048576,
		PGC_POSTMASTER,
		0,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable(
		"llm_gateway.transactional_ledger_rows",
		"Calls per transaction whose ledger row is also written in the "
		"caller's transaction.",
		"0: the worker writes every row, in batches, a moment after the "
		"call (the fastest).  Above 0 the caller can read its rows at "
		"once, at the cost of an insert and a WAL flush per call; later "
		"calls of the same transaction are written by the worker.",
		&lg_transactional_ledger_rows,
		0,
		0,
		1000000,
		PGC_USERSET,
		0,
		NULL,
		NULL,
		NULL);

	DefineCustomIntVariable("llm_gateway.max_retries",
							"Retries of a transient failure on one deployment "
							"before falling back.",
							"A route's retries setting takes precedence.",
							&lg_max_retries,
							2,
							0,
							10,
							PGC_USERSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("llm_gateway.retry_backoff_ms",
							"First pause before a retry; it doubles each "
							"time, with jitter.",
							NULL,
							&lg_retry_backoff_ms,
							250,
							0,
							60000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("llm_gateway.retry_after_max_ms",
							"Longest retry-after a provider may ask for and "
							"still be waited on.",
							"A longer one makes the router fall back at once.",
							&lg_retry_after_max_ms,
							10000,
							0,
							600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomBoolVariable("llm_gateway.cache",
							 "Answers repeated requests from the response "
							 "cache.",
							 "Tenants and calls can opt out as well.",
							 &lg_cache_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomIntVariable("llm_gateway.cache_ttl",
							"How long a cached answer stays valid.",
							"The call's cache_ttl_s option takes precedence.",
							&lg_cache_ttl_s,
							3600,
							1,
							31 * 24 * 3600,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("llm_gateway.cache_max_size",
							"Size the worker trims the response cache to, "
							"least recently used "
							"first.",
							NULL,
							&lg_cache_max_kb,
							256 * 1024,
							64,
							INT_MAX / 2,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);

	lg_define_account_settings();
	MarkGUCPrefixReserved("llm_gateway");
}

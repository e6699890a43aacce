/*
 * guc_account.c — the settings of budgets, quotas, alerts and exchange
 * rates (the rest are in guc.c).
 *
 * Sizes are fixed at server start; what the worker does (rates, webhooks)
 * follows a reload; none of them is per session, since they describe the
 * whole gateway, not one caller.
 */
#include "account.h"

int   lg_max_tenants = 1024;
char *lg_fallback_rates = NULL;
char *lg_exchange_rate_url = NULL;
int   lg_exchange_rate_interval_s = 3600;
char *lg_alert_webhook = NULL;
int   lg_webhook_timeout_ms = 5000;
int   lg_webhook_max_attempts = 6;
int   lg_webhook_retry_ms = 30000;
int   lg_rate_alert_interval_s = 600;
int   lg_ledger_retention_months = 0;
int   lg_content_retention_days = 0;
int   lg_sweep_interval_s = 30;

static void
define_int(const char *name,
		   const char *short_desc,
		   const char *long_desc,
		   int        *var,
		   int         boot,
		   int         min,
		   int         max,
		   GucContext  context,
		   int         flags)
{
	DefineCustomIntVariable(name,
							short_desc,
							long_desc,
							var,
							boot,
							min,
							max,
							context,
							flags,
							NULL,
							NULL,
							NULL);
}

static void
define_string(const char *name,
			  const char *short_desc,
			  const char *long_desc,
			  char      **var,
			  const char *boot)
{
	DefineCustomStringVariable(name,
							   short_desc,
							   long_desc,
							   var,
							   boot,
							   PGC_SIGHUP,
							   0,
							   NULL,
							   NULL,
							   NULL);
}

void
lg_define_account_settings(void)
{
	define_int("llm_gateway.max_tenants",
			   "Tenants whose budgets and rate limits shared memory can "
			   "track.",
			   "Sizes the budget counters (4 per tenant) and the rate-limit "
			   "windows (2 per tenant); about 7 kB per tenant.",
			   &lg_max_tenants,
			   1024,
			   16,
			   1000000,
			   PGC_POSTMASTER,
			   0);
	define_string("llm_gateway.fallback_rates",
				  "Exchange rates used when neither the refreshed nor a "
				  "manual "
				  "rate is known.",
				  "Units of each currency per USD, as \"BRL=5.00, EUR=0.92\".",
				  &lg_fallback_rates,
				  "BRL=5.00");
	define_string("llm_gateway.exchange_rate_url",
				  "URL of a JSON document of exchange rates the worker "
				  "refreshes "
				  "from.",
				  "A document with a \"rates\" object of units per base "
				  "currency, such as https://open.er-api.com/v6/latest/USD.  "
				  "Empty: no refresh.",
				  &lg_exchange_rate_url,
				  "");
	define_int("llm_gateway.exchange_rate_interval",
			   "Least time between two exchange-rate refreshes.",
			   NULL,
			   &lg_exchange_rate_interval_s,
			   3600,
			   1,
			   7 * 86400,
			   PGC_SIGHUP,
			   GUC_UNIT_S);
	define_string("llm_gateway.alert_webhook",
				  "Webhook for alerts that have none of their own.",
				  "Provider alerts, rate limits and budgets without a "
				  "webhook are POSTed here.  Empty: none.",
				  &lg_alert_webhook,
				  "");
	define_int("llm_gateway.webhook_timeout",
			   "Time a webhook may take to answer one delivery.",
			   NULL,
			   &lg_webhook_timeout_ms,
			   5000,
			   100,
			   60000,
			   PGC_SIGHUP,
			   GUC_UNIT_MS);
	define_int("llm_gateway.webhook_max_attempts",
			   "Deliveries of an alert to its webhook before it is given up.",
			   NULL,
			   &lg_webhook_max_attempts,
			   6,
			   1,
			   100,
			   PGC_SIGHUP,
			   0);
	define_int("llm_gateway.webhook_retry",
			   "Wait before the first webhook retry; it doubles each time.",
			   "Capped at one day.",
			   &lg_webhook_retry_ms,
			   30000,
			   10,
			   86400000,
			   PGC_SIGHUP,
			   GUC_UNIT_MS);
	define_int("llm_gateway.ledger_retention_months",
			   "Months of raw ledger rows to keep; older monthly partitions "
			   "are dropped.",
			   "0 keeps them all.  The rollups (usage_hourly, usage_daily) "
			   "are kept whatever this says.",
			   &lg_ledger_retention_months,
			   0,
			   0,
			   1200,
			   PGC_SUSET,
			   0);
	define_int("llm_gateway.content_retention_days",
			   "Days to keep the prompts and answers of tenants whose "
			   "privacy is \"text\".",
			   "0 keeps them as long as their ledger rows.  The worker "
			   "deletes older ones at each full pass.",
			   &lg_content_retention_days,
			   0,
			   0,
			   36500,
			   PGC_SUSET,
			   0);
	define_int("llm_gateway.sweep_interval",
			   "Least time between two sweeps of every budget by the worker.",
			   "A sweep fires the thresholds reached without a call and "
			   "sets quiet budget counters to the ledger.",
			   &lg_sweep_interval_s,
			   30,
			   1,
			   86400,
			   PGC_SIGHUP,
			   GUC_UNIT_S);
	define_int("llm_gateway.rate_alert_interval",
			   "Least time between two rate_limited alerts of one tenant or "
			   "agent.",
			   NULL,
			   &lg_rate_alert_interval_s,
			   600,
			   0,
			   86400,
			   PGC_SIGHUP,
			   GUC_UNIT_S);
}

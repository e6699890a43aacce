/*
 * currency.c — refresh the exchange rates from llm_gateway.exchange_rate_url.
 *
 * At most once per llm_gateway.exchange_rate_interval (the time of the last
 * attempt is kept in shared memory, so a restarted worker does not ask
 * again at once), a full maintenance pass GETs the URL and reads
 * "rates.<CODE>" for every currency the gateway needs: the tenants'
 * currencies, the currencies of budgets, and those refreshed before.  The
 * document's base is "base_code" or "base" (USD when absent); another base
 * is converted through its USD rate.  "manual" rates are never overwritten.
 *
 * When the URL cannot be read, or a currency is missing from it, the rows
 * keep their last rate and record the error: calls then say
 * rate_source "last_known" (llm_gateway.rate_for), and without any row the
 * configured fallback rate applies.
 */
#include "account.h"
#include "http.h"
#include "shmem.h"
#include "spi_util.h"

#include "catalog/pg_type.h"

#define FETCH_TIMEOUT_MS 10000

static const char *const needed_sql =
	"SELECT c FROM (SELECT currency AS c FROM llm_gateway.tenants"
	"               UNION SELECT upper(unit) FROM llm_gateway.budgets"
	"                      WHERE unit NOT IN ('usd', 'tokens', 'requests')"
	"               UNION SELECT currency FROM llm_gateway.exchange_rates"
	"                      WHERE source = 'api') x"
	" WHERE c <> 'USD' ORDER BY 1";

static const char *const store_sql =
	"INSERT INTO llm_gateway.exchange_rates AS r (currency, rate, source)"
	" VALUES ($1, $2::numeric, 'api')"
	" ON CONFLICT (currency) DO UPDATE"
	"   SET rate = EXCLUDED.rate, fetched_at = now(), checked_at = now(),"
	"       last_error = NULL"
	" WHERE r.source = 'api'";

static const char *const failed_sql =
	"UPDATE llm_gateway.exchange_rates SET checked_at = now(), last_error = $2"
	" WHERE source = 'api' AND ($1 = '' OR currency = $1)";

static SPIPlanPtr needed_plan = NULL;
static SPIPlanPtr store_plan = NULL;
static SPIPlanPtr failed_plan = NULL;

static void
record_failure(const char *currency, const char *error)
{
	Oid   types[2] = {TEXTOID, TEXTOID};
	Datum v[2];

	v[0] = CStringGetTextDatum(currency);
	v[1] = CStringGetTextDatum(error);
	if (SPI_execute_plan(lg_spi_prepare_once(&failed_plan,
											 failed_sql,
											 2,
											 types),
						 v,
						 NULL,
						 false,
						 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record an exchange-rate failure");
}

static void
store(const char *currency, double rate)
{
	Oid   types[2] = {TEXTOID, TEXTOID};
	Datum v[2];

	v[0] = CStringGetTextDatum(currency);
	v[1] = CStringGetTextDatum(psprintf("%.10g", rate));
	if (SPI_execute_plan(lg_spi_prepare_once(&store_plan, store_sql, 2, types),
						 v,
						 NULL,
						 false,
						 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store an exchange rate");
}

/* GET the document; NULL and *error when that failed. */
static char *
fetch(size_t *len, char **error)
{
	LgHttpRequest  req;
	LgHttpResponse resp;

	memset(&req, 0, sizeof(req));
	req.url = lg_exchange_rate_url;
	req.headers = list_make1(pstrdup("Accept: application/json"));
	req.timeout_ms = FETCH_TIMEOUT_MS;
	req.connect_timeout_ms = FETCH_TIMEOUT_MS;
	lg_http_send(&req, &resp);
	if (resp.failure != LG_HTTP_OK)
		*error = psprintf("could not fetch exchange rates: %s", resp.error);
	else if (resp.status < 200 || resp.status >= 300)
		*error =
			psprintf("could not fetch exchange rates: HTTP %ld", resp.status);
	else
	{
		*len = resp.body_len;
		return resp.body;
	}
	return NULL;
}

static double
positive_number(const LgJsonField *f)
{
	double v;

	if (!f->found || !f->is_number)
		return 0;
	v = strtod(f->value.data, NULL);
	return v > 0 && v < 1e12 ? v : 0;
}

/* Read every needed rate out of the document and store it. */
static int
apply(const char *doc, size_t len, List *needed, char **error)
{
	int          n = list_length(needed);
	LgJsonField *f = palloc0(sizeof(LgJsonField) * (n + 3));
	const char  *base;
	double       usd = 1;
	int          stored = 0;

	for (int i = 0; i < n; i++)
		f[i].path = psprintf("rates.%s", (char *) list_nth(needed, i));
	f[n].path = "base_code";
	f[n + 1].path = "base";
	f[n + 2].path = "rates.USD";
	if (!lg_json_extract(doc, len, f, n + 3, error))
	{
		*error =
			psprintf("exchange-rate document is not valid JSON: %s", *error);
		return -1;
	}
	base = f[n].found       ? f[n].value.data
		   : f[n + 1].found ? f[n + 1].value.data
							: "USD";
	if (pg_strcasecmp(base, "USD") != 0 &&
		(usd = positive_number(&f[n + 2])) == 0)
	{
		*error = psprintf("exchange-rate document has base %s and no USD rate",
						  base);
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		const char *code = (const char *) list_nth(needed, i);
		double      rate = positive_number(&f[i]);

		if (rate == 0)
		{
			record_failure(code,
						   psprintf("the exchange-rate document has no rate "
									"for %s",
									code));
			continue;
		}
		store(code, rate / usd);
		stored++;
	}
	return stored;
}

/*
 * Refresh if due (SPI connected, owner scope): the number of rates stored,
 * -1 on failure (*error says why), or 0 when not due or not configured.
 */
int
lg_rates_refresh(char **error)
{
	TimestampTz now = GetCurrentTimestamp();
	List       *needed = NIL;
	char       *doc;
	size_t      len = 0;

	*error = NULL;
	if (lg_exchange_rate_url == NULL || lg_exchange_rate_url[0] == '\0' ||
		(lg_shared->rates_checked_at != 0 &&
		 now - lg_shared->rates_checked_at <
			 (int64) lg_exchange_rate_interval_s * USECS_PER_SEC))
		return 0;
	lg_shared->rates_checked_at = now;

	lg_spi_select(lg_spi_prepare_once(&needed_plan, needed_sql, 0, NULL),
				  NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
		needed =
			lappend(needed, lg_spi_text((int) i, 1, CurrentMemoryContext));
	if (needed == NIL)
		return 0;
	if ((doc = fetch(&len, error)) != NULL)
	{
		int stored = apply(doc, len, needed, error);

		if (stored >= 0)
			return stored;
	}
	record_failure("", *error);
	return -1;
}

/*
 * The fallback rate of a currency from llm_gateway.fallback_rates
 * ("BRL=5.00, EUR=0.92"), as numeric text, or NULL.
 */
char *
lg_fallback_rate(const char *currency)
{
	const char *p = lg_fallback_rates ? lg_fallback_rates : "";
	size_t      len = strlen(currency);

	while (*p)
	{
		const char *end;

		while (*p == ' ' || *p == ',')
			p++;
		end = p + strcspn(p, ",");
		if (pg_strncasecmp(p, currency, len) == 0)
		{
			const char *v = p + len;

			while (*v == ' ')
				v++;
			if (*v == '=')
			{
				char *rate;

				v++;
				while (*v == ' ')
					v++;
				rate = pnstrdup(v, end - v);
				while (*rate && rate[strlen(rate) - 1] == ' ')
					rate[strlen(rate) - 1] = '\0';
				return strspn(rate, "0123456789.") == strlen(rate) && *rate
						   ? rate
						   : NULL;
			}
		}
		p = end;
	}
	return NULL;
}

/*
 * The rate a call uses, as llm_gateway.rate_for() says in SQL: 1 for USD;
 * the stored rate ("manual", "api", or "last_known" when the last refresh
 * failed); else the configured fallback; else none ("missing").
 */
void
lg_rate_for(const char  *currency,
			char        *stored_rate,
			const char  *stored_source,
			bool         refresh_failed,
			char       **rate,
			const char **source)
{
	if (pg_strcasecmp(currency, "USD") == 0)
	{
		*rate = pstrdup("1");
		*source = "identity";
	}
	else if (stored_rate != NULL)
	{
		*rate = stored_rate;
		*source = strcmp(stored_source, "manual") == 0 ? "manual"
				  : refresh_failed                     ? "last_known"
													   : "api";
	}
	else if ((*rate = lg_fallback_rate(currency)) != NULL)
		*source = "fallback";
	else
		*source = "missing";
}

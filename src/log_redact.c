/*
 * log_redact.c — keep secrets out of the server log.
 *
 * The gateway's own messages never carry a key, but PostgreSQL's can:
 *
 *   - a reload logs every changed setting with its new value, so changing
 *     llm_gateway.master_key logs the master key;
 *   - log_statement logs llm_provider_set(... '{"api_key": "..."}') and
 *     ALTER SYSTEM SET llm_gateway.master_key = '...', with their text or
 *     their bound parameters, and an error in such a statement repeats its
 *     text as STATEMENT;
 *   - at DEBUG3 and below the postmaster dumps its environment, where an
 *     api_key_env variable lives.
 *
 * An emit_log_hook, installed in the postmaster and inherited by every
 * process, rewrites those messages before they are written.  Only the
 * forms PostgreSQL itself produces are touched: what a client receives for
 * its own errors is unchanged.
 */
#include "llm_gateway.h"

#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "tcop/tcopprot.h"

static emit_log_hook_type previous_emit_log_hook = NULL;

/* Case-insensitive strstr over ASCII. */
static bool
contains_ci(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);

	for (const char *h = haystack; *h; h++)
		if (pg_strncasecmp(h, needle, n) == 0)
			return true;
	return false;
}

/* Whether SQL text may carry a provider key or a master key. */
static bool
carries_secret(const char *sql)
{
	return sql != NULL &&
		   (strstr(sql, "\"api_key\"") != NULL ||
			contains_ci(sql, "llm_gateway.master_key") ||
			contains_ci(sql, "llm_gateway.previous_master_key") ||
			contains_ci(sql, "secret_encrypt"));
}

static bool
starts_with(const char *s, const char *prefix)
{
	return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A setting's change as a reload logs it: 'parameter "NAME" changed to'. */
static void
redact_setting_change(ErrorData *edata)
{
	const char *m = edata->message;
	const char *p = "parameter \"llm_gateway.";

	if (!starts_with(m, p) || strstr(m, "\" changed to \"") == NULL)
		return;
	if (starts_with(m + strlen(p), "master_key\"") ||
		starts_with(m + strlen(p), "previous_master_key\""))
		edata->message = psprintf("%.*s changed (value hidden by llm_gateway)",
								  (int) (strstr(m, " changed to ") - m),
								  m);
}

/* log_statement's and log_min_duration_statement's lines. */
static void
redact_statement(ErrorData *edata)
{
	const char *m = edata->message;

	if ((starts_with(m, "statement: ") || starts_with(m, "execute ") ||
		 starts_with(m, "duration: ")) &&
		carries_secret(m))
		edata->message = pstrdup("statement: (hidden by llm_gateway: it may "
								 "carry an API key or the master key)");
	if (starts_with(edata->detail, "parameters: ") &&
		carries_secret(edata->detail))
		edata->detail = pstrdup("parameters: (hidden by llm_gateway)");
	/* the STATEMENT: line of an error in such a statement */
	if (carries_secret(debug_query_string))
		edata->hide_stmt = true;
}

/* The postmaster's environment dump: "\tNAME=value" lines at DEBUG3. */
static void
redact_environment(ErrorData *edata)
{
	const char *m = edata->message;
	const char *eq;

	if (IsUnderPostmaster || edata->elevel > DEBUG3 || m == NULL ||
		m[0] != '\t' || (eq = strchr(m, '=')) == NULL)
		return;
	edata->message =
		psprintf("%.*s(value hidden by llm_gateway)", (int) (eq - m + 1), m);
}

static void
lg_emit_log_hook(ErrorData *edata)
{
	if (edata->message != NULL)
	{
		redact_setting_change(edata);
		redact_statement(edata);
		redact_environment(edata);
	}
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

void
lg_log_redact_init(void)
{
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = lg_emit_log_hook;
}

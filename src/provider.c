/*
 * provider.c — one attempt against one deployment, protocol-independent.
 *
 * The protocol files (provider_openai.c, ...) only build a request and parse
 * a reply.  This file does what is common to all of them: open the sealed
 * API key, pick the timeouts, run the HTTP exchange, turn the outcome into
 * an LgAttempt with the SQLSTATE and message the caller will see, and price
 * the answer.  The plaintext key lives only between decryption and the end
 * of the exchange, and is wiped on every path, errors and cancels included.
 */
#include "provider.h"

#define MAX_PROVIDER_MESSAGE 1000

static const char *const kind_names[] = {"openai",
										 "azure_openai",
										 "anthropic",
										 "gemini"};

const char *
lg_kind_name(LgProviderKind kind)
{
	return kind_names[kind];
}

bool
lg_kind_parse(const char *name, LgProviderKind *kind)
{
	for (int i = 0; i < (int) lengthof(kind_names); i++)
		if (strcmp(name, kind_names[i]) == 0)
		{
			*kind = (LgProviderKind) i;
			return true;
		}
	return false;
}

const char *
lg_attempt_status_name(LgAttemptStatus status)
{
	switch (status)
	{
		case LG_ATTEMPT_OK:
			return "ok";
		case LG_ATTEMPT_TIMEOUT:
			return "timeout";
		default:
			return "error";
	}
}

static const LgProviderOps *
ops_for(LgProviderKind kind)
{
	switch (kind)
	{
		case LG_KIND_OPENAI:
			return &lg_openai_ops;
		case LG_KIND_AZURE_OPENAI:
			return &lg_azure_openai_ops;
		case LG_KIND_ANTHROPIC:
			return &lg_anthropic_ops;
		case LG_KIND_GEMINI:
			return &lg_gemini_ops;
	}
	elog(ERROR, "unknown provider kind %d", (int) kind);
	pg_unreachable();
}

/* ---- what the caller is told ---- */

/*
 * Provider text goes into error messages: convert it from UTF-8, cut it to a
 * readable length, and make sure it cannot carry the API key back to us.
 */
static char *
provider_text(const char *utf8, const char *api_key)
{
	char *s;
	int   len;

	if (utf8 == NULL || utf8[0] == '\0')
		return NULL;
	len = strlen(utf8);
	if (!pg_verify_mbstr(PG_UTF8, utf8, len, true))
		return pstrdup("(not valid UTF-8)");
	s = pg_any_to_server(utf8, len, PG_UTF8);
	s = pnstrdup(s, pg_mbcliplen(s, strlen(s), MAX_PROVIDER_MESSAGE));
	if (api_key != NULL && strlen(api_key) >= 4)
	{
		char *hit;

		while ((hit = strstr(s, api_key)) != NULL)
		{
			*hit = '\0';
			s = psprintf("%s[redacted]%s", s, hit + strlen(api_key));
		}
	}
	return s;
}

/* libcurl's error text as a detail line: capitalised, with a full stop. */
static char *
sentence(const char *text)
{
	char *s = psprintf("%s%s",
					   text,
					   text[0] && text[strlen(text) - 1] == '.' ? "" : ".");

	s[0] = pg_toupper((unsigned char) s[0]);
	return s;
}

static void
fail(LgAttempt *a, int sqlstate, char *error, char *detail, char *hint)
{
	a->status = (sqlstate == ERRCODE_LG_PROVIDER_TIMEOUT) ? LG_ATTEMPT_TIMEOUT
														  : LG_ATTEMPT_ERROR;
	a->sqlstate = sqlstate;
	a->error = error;
	a->detail = detail;
	a->hint = hint;
}

static void
fail_transport(LgAttempt *a, const LgHttpResponse *resp, int timeout_ms)
{
	const char *name = a->dep->provider.name;

	switch (resp->failure)
	{
		case LG_HTTP_TIMEOUT:
			fail(a,
				 ERRCODE_LG_PROVIDER_TIMEOUT,
				 psprintf("provider \"%s\" did not answer within %d ms",
						  name,
						  timeout_ms),
				 NULL,
				 pstrdup(
					 "Raise the timeout with the call's timeout_ms option, "
					 "the provider's timeout_ms, or llm_gateway.timeout_ms."));
			break;
		case LG_HTTP_TOO_LARGE:
			fail(a,
				 ERRCODE_LG_RESPONSE_TOO_LARGE,
				 psprintf("the response of provider \"%s\" is larger than "
						  "llm_gateway.max_response_size (%d kB)",
						  name,
						  lg_max_response_kb),
				 NULL,
				 pstrdup("Lower max_tokens, or raise "
						 "llm_gateway.max_response_size."));
			break;
		case LG_HTTP_CONNECT:
			fail(a,
				 ERRCODE_LG_PROVIDER_CONNECT,
				 psprintf("could not exchange data with provider \"%s\"",
						  name),
				 sentence(resp->error),
				 pstrdup("Check the provider's base_url and that it is "
						 "reachable from the database server."));
			break;
		default:
			fail(a,
				 ERRCODE_LG_PROVIDER_ERROR,
				 psprintf("request to provider \"%s\" failed", name),
				 sentence(resp->error),
				 NULL);
			break;
	}
}

static void
fail_status(LgAttempt            *a,
			const LgProviderOps  *ops,
			const LgHttpResponse *resp,
			const char           *api_key)
{
	const char     *name = a->dep->provider.name;
	long            status = resp->status;
	LgProviderError perr = {NULL, NULL};
	StringInfoData  detail;
	char           *message;

	ops->parse_error(resp->body, resp->body_len, &perr);
	message = provider_text(perr.message, api_key);
	initStringInfo(&detail);
	if (message)
		appendStringInfoString(&detail, message);
	else
		appendStringInfo(&detail,
						 "The provider sent no error message (content type "
						 "\"%s\", %zu bytes).",
						 resp->content_type[0] ? resp->content_type : "none",
						 resp->body_len);
	if (perr.code)
		appendStringInfo(&detail,
						 " (code: %s)",
						 provider_text(perr.code, api_key));

	if (status == 401 || status == 403)
		fail(a,
			 ERRCODE_LG_PROVIDER_AUTH,
			 psprintf("provider \"%s\" refused the credentials (HTTP %ld)",
					  name,
					  status),
			 detail.data,
			 psprintf("Check the API key with llm_provider_set('%s', ...).",
					  name));
	else if (status == 429)
	{
		if (resp->retry_after[0])
			appendStringInfo(&detail, " Retry after %s s.", resp->retry_after);
		fail(a,
			 ERRCODE_LG_PROVIDER_RATE_LIMITED,
			 psprintf("provider \"%s\" is rate limiting requests (HTTP 429)",
					  name),
			 detail.data,
			 pstrdup("Retry later, or give the model a deployment on another "
					 "provider."));
	}
	else if (status == 400 || status == 404 || status == 409 ||
			 status == 413 || status == 422)
		fail(a,
			 ERRCODE_LG_PROVIDER_REJECTED,
			 psprintf("provider \"%s\" rejected the request (HTTP %ld)",
					  name,
					  status),
			 detail.data,
			 pstrdup("Check the model's upstream_model and the call's "
					 "messages and options."));
	else if (status == 408 || status >= 500)
		fail(a,
			 ERRCODE_LG_PROVIDER_UNAVAILABLE,
			 psprintf("provider \"%s\" is unavailable (HTTP %ld)",
					  name,
					  status),
			 detail.data,
			 pstrdup("Retry later, or give the model a deployment on another "
					 "provider."));
	else
		fail(a,
			 ERRCODE_LG_PROVIDER_ERROR,
			 psprintf("provider \"%s\" answered with unexpected HTTP status "
					  "%ld",
					  name,
					  status),
			 detail.data,
			 status >= 300 && status < 400
				 ? pstrdup("Redirects are not followed; check the provider's "
						   "base_url.")
				 : NULL);
}

/* retry-after in seconds (the HTTP-date form is ignored): ms, or -1. */
static int32
retry_after_ms(const char *value)
{
	char  *end;
	double seconds;

	if (value[0] == '\0')
		return -1;
	seconds = strtod(value, &end);
	if (end == value || seconds < 0 || seconds > 86400)
		return -1;
	return (int32) (seconds * 1000);
}

static void
interpret(LgAttempt            *a,
		  const LgProviderOps  *ops,
		  const LgHttpResponse *resp,
		  const LgRequest      *req,
		  const char           *api_key,
		  int                   timeout_ms)
{
	char *why = NULL;

	a->http_status = resp->status;
	a->retry_after_ms = retry_after_ms(resp->retry_after);
	if (resp->failure != LG_HTTP_OK)
		fail_transport(a, resp, timeout_ms);
	else if (resp->status < 200 || resp->status > 299)
		fail_status(a, ops, resp, api_key);
	else if (!ops->parse_reply(resp->body, resp->body_len, &a->reply, &why))
		fail(a,
			 ERRCODE_LG_RESPONSE_MALFORMED,
			 psprintf("provider \"%s\" sent a malformed response",
					  a->dep->provider.name),
			 psprintf("%s The body has content type \"%s\" and %zu bytes.",
					  sentence(provider_text(why, api_key)),
					  resp->content_type[0] ? resp->content_type : "none",
					  resp->body_len),
			 NULL);
	else
	{
		a->status = LG_ATTEMPT_OK;
		if (a->reply.provider_request_id == NULL && resp->request_id[0])
			a->reply.provider_request_id = pstrdup(resp->request_id);
	}
	if (a->status == LG_ATTEMPT_OK && !a->reply.has_usage)
	{
		/* The provider billed the call but did not say how much: estimate. */
		a->reply.usage.input_tokens = (req->content_bytes + 3) / 4;
		a->reply.usage.output_tokens =
			a->reply.content ? (strlen(a->reply.content) + 3) / 4 : 0;
		a->reply.usage_estimated = true;
	}
	if (a->status == LG_ATTEMPT_OK)
		a->cost_picousd = lg_cost_picousd(&a->reply.usage, &a->dep->price);
}

static int32
effective_timeout(const LgRequest *req, const LgDeployment *dep)
{
	if (req->opt.timeout_ms > 0)
		return req->opt.timeout_ms;
	if (dep->provider.timeout_ms > 0)
		return dep->provider.timeout_ms;
	return lg_timeout_ms;
}

/* Tell the hooks that the exchange was abandoned, with the error's words. */
static void
report_abandon(const LgAttemptHooks *hooks, MemoryContext cxt)
{
	MemoryContext errcxt = MemoryContextSwitchTo(cxt);
	ErrorData    *edata = CopyErrorData();

	hooks->on_abandon(hooks->arg, edata->message);
	FreeErrorData(edata);
	MemoryContextSwitchTo(errcxt);
}

void
lg_attempt_run(LgAttempt            *a,
			   const LgRequest      *req,
			   const LgDeployment   *dep,
			   const LgAttemptHooks *hooks)
{
	const LgProviderOps *ops = ops_for(dep->provider.kind);
	MemoryContext        cxt = CurrentMemoryContext;
	char                *key = NULL;
	volatile bool        sent = false;
	LgHttpRequest        http;
	LgHttpResponse       resp;
	instr_time           start;
	instr_time           elapsed;

	memset(a, 0, sizeof(*a));
	a->dep = dep;
	a->number = 1;
	a->retry_after_ms = -1;
	memset(&http, 0, sizeof(http));
	http.timeout_ms = effective_timeout(req, dep);
	http.connect_timeout_ms = Min(http.timeout_ms,
								  dep->provider.connect_timeout_ms > 0
									  ? dep->provider.connect_timeout_ms
									  : lg_connect_timeout_ms);
	/* before the attempt counts as sent; lg_http_send checks again */
	if (!lg_url_is_allowed(dep->provider.base_url))
		lg_url_check(dep->provider.base_url,
					 psprintf("provider \"%s\"", dep->provider.name));
	key = lg_provider_key(&dep->provider);
	PG_TRY();
	{
		ops->build(req, dep, key, &http);
		if (hooks && hooks->before_send)
			hooks->before_send(hooks->arg);
		sent = true;
		a->started_at = GetCurrentTimestamp();
		INSTR_TIME_SET_CURRENT(start);
		lg_http_send(&http, &resp);
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		a->latency_ms = INSTR_TIME_GET_MILLISEC(elapsed);
		interpret(a, ops, &resp, req, key, http.timeout_ms);
	}
	PG_CATCH();
	{
		lg_http_wipe_request(&http);
		lg_secret_free(key);
		if (sent && hooks && hooks->on_abandon)
			report_abandon(hooks, cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	lg_http_wipe_request(&http);
	lg_secret_free(key);
}

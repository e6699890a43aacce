/*
 * provider_anthropic.c — the Anthropic Messages protocol.
 *
 * POST {base_url}/v1/messages with x-api-key and anthropic-version headers.
 * The Messages API differs from Chat Completions in ways the service
 * enforces strictly:
 *   - there is no "system" role: system text goes to the top-level "system"
 *     field (all system messages joined);
 *   - roles alternate user/assistant, starting with user: consecutive
 *     messages of one role are merged;
 *   - max_tokens is required: the call's option, else the deployment's
 *     max_output_tokens, else DEFAULT_MAX_TOKENS;
 *   - "stop" is called "stop_sequences", and temperature stops at 1.
 *
 * Token semantics: input_tokens EXCLUDES cache reads and cache writes, which
 * are separate additive counts.  The reply is normalised to the gateway's
 * convention (input_tokens counts every prompt token).
 */
#include "provider.h"

#define ANTHROPIC_VERSION  "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096

/* max_tokens is always sent, apart: see append_body */
static const LgOptionNames anthropic_option_names = {"temperature",
													 NULL,
													 "top_p",
													 "stop_sequences"};

static void
check_request(const LgRequest    *req,
			  const LgDeployment *dep,
			  const LgTurn       *turns,
			  int                 nturns)
{
	if (nturns == 0 || turns[0].role != LG_ROLE_USER)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_MESSAGES),
				 errmsg("model \"%s\" needs the conversation to start with a "
						"\"user\" message",
						dep->model),
				 errdetail("Anthropic's Messages API accepts no other first "
						   "turn.")));
	if (req->opt.temperature && strtod(req->opt.temperature, NULL) > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_INVALID_OPTIONS),
				 errmsg("option \"temperature\" must be between 0 and 1 for "
						"model \"%s\"",
						dep->model),
				 errdetail("Anthropic's Messages API accepts no higher "
						   "temperature.")));
}

static void
append_body(StringInfo          b,
			const LgRequest    *req,
			const LgDeployment *dep,
			const char         *system,
			const LgTurn       *turns,
			int                 nturns)
{
	bool  first = true;
	int32 max_tokens = req->opt.max_tokens > 0      ? req->opt.max_tokens
					   : dep->max_output_tokens > 0 ? dep->max_output_tokens
													: DEFAULT_MAX_TOKENS;

	appendStringInfoChar(b, '{');
	lg_json_append_key(b, &first, "model");
	lg_json_append_string(b, dep->upstream_model);
	lg_json_append_key(b, &first, "max_tokens");
	appendStringInfo(b, "%d", max_tokens);
	if (system)
	{
		lg_json_append_key(b, &first, "system");
		lg_json_append_string(b, system);
	}
	lg_json_append_key(b, &first, "messages");
	appendStringInfoChar(b, '[');
	for (int i = 0; i < nturns; i++)
	{
		appendStringInfoString(b, i > 0 ? ",{\"role\":" : "{\"role\":");
		escape_json(b, lg_role_name(turns[i].role));
		appendStringInfoString(b, ",\"content\":");
		lg_json_append_string(b, turns[i].text.data);
		appendStringInfoChar(b, '}');
	}
	appendStringInfoChar(b, ']');
	lg_json_append_options(b, &first, req, &anthropic_option_names);
	appendStringInfoChar(b, '}');
}

static void
anthropic_build(const LgRequest    *req,
				const LgDeployment *dep,
				const char         *api_key,
				LgHttpRequest      *http)
{
	StringInfoData body;
	LgTurn        *turns;
	char          *system;
	int            nturns = lg_conversation_turns(req, &system, &turns);

	check_request(req, dep, turns, nturns);
	http->url = psprintf("%s/v1/messages", dep->provider.base_url);
	http->headers =
		lg_request_headers(dep, "anthropic-version: " ANTHROPIC_VERSION);
	if (api_key)
		http->headers =
			lappend(http->headers, psprintf("x-api-key: %s", api_key));
	initStringInfo(&body);
	append_body(&body, req, dep, system, turns, nturns);
	http->body = body.data;
	http->body_len = body.len;
}

/* ---- replies ---- */

enum
{
	F_ID,
	F_MODEL,
	F_TYPE,
	F_TEXT,
	F_STOP,
	F_INPUT,
	F_OUTPUT,
	F_CACHE_WRITE,
	F_CACHE_READ,
	NFIELDS
};

/* Anthropic's stop reasons in the gateway's (OpenAI's) vocabulary. */
static char *
finish_reason(const char *stop_reason)
{
	if (stop_reason == NULL)
		return NULL;
	if (strcmp(stop_reason, "end_turn") == 0 ||
		strcmp(stop_reason, "stop_sequence") == 0)
		return pstrdup("stop");
	if (strcmp(stop_reason, "max_tokens") == 0)
		return pstrdup("length");
	if (strcmp(stop_reason, "tool_use") == 0)
		return pstrdup("tool_calls");
	if (strcmp(stop_reason, "refusal") == 0)
		return pstrdup("content_filter");
	return pstrdup(stop_reason);
}

static bool
anthropic_parse_reply(const char *body, size_t len, LgReply *reply, char **why)
{
	LgJsonField f[NFIELDS] = {
		[F_ID] = {.path = "id"},
		[F_MODEL] = {.path = "model"},
		[F_TYPE] = {.path = "type"},
		[F_TEXT] = {.path = "content.*.text", .concat = true},
		[F_STOP] = {.path = "stop_reason"},
		[F_INPUT] = {.path = "usage.input_tokens"},
		[F_OUTPUT] = {.path = "usage.output_tokens"},
		[F_CACHE_WRITE] = {.path = "usage.cache_creation_input_tokens"},
		[F_CACHE_READ] = {.path = "usage.cache_read_input_tokens"},
	};
	LgUsage *u = &reply->usage;

	if (!lg_json_extract(body, len, f, NFIELDS, why))
		return false;
	if (!f[F_TYPE].found || strcmp(f[F_TYPE].value.data, "message") != 0)
	{
		*why = pstrdup(
			"the response is not a message (its \"type\" is not \"message\")");
		return false;
	}
	memset(reply, 0, sizeof(*reply));
	reply->content = lg_json_server_string(&f[F_TEXT]);
	reply->finish_reason = finish_reason(lg_json_server_string(&f[F_STOP]));
	reply->provider_request_id = lg_json_server_string(&f[F_ID]);
	reply->upstream_model = lg_json_server_string(&f[F_MODEL]);
	reply->has_usage = f[F_INPUT].found || f[F_OUTPUT].found;
	u->cached_tokens = lg_json_count(&f[F_CACHE_READ]);
	u->cache_write_tokens = lg_json_count(&f[F_CACHE_WRITE]);
	u->input_tokens =
		lg_json_count(&f[F_INPUT]) + u->cached_tokens + u->cache_write_tokens;
	u->output_tokens = lg_json_count(&f[F_OUTPUT]);
	return true;
}

static void
anthropic_parse_error(const char *body, size_t len, LgProviderError *err)
{
	lg_parse_error_fields(body, len, err, "error.message", "error.type", NULL);
}

const LgProviderOps lg_anthropic_ops = {
	.build = anthropic_build,
	.parse_reply = anthropic_parse_reply,
	.parse_error = anthropic_parse_error,
};

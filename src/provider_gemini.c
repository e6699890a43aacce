/*
 * provider_gemini.c — the Google Gemini generateContent protocol.
 *
 * POST {base_url}/v1beta/models/{model}:generateContent.  The API key goes
 * only in the x-goog-api-key header, never in the URL (?key=): URLs end up
 * in error messages and logs.
 *
 * Roles are "user" and "model" (assistant becomes model); system text goes
 * to systemInstruction; consecutive turns of one role are merged; the
 * sampling options live in generationConfig.
 *
 * Token semantics: promptTokenCount INCLUDES cachedContentTokenCount, and
 * thoughtsTokenCount (thinking models) is billed as output, so it is added
 * to the output tokens and reported as reasoning.
 */
#include "provider.h"

static const LgOptionNames gemini_option_names = {"temperature",
												  "maxOutputTokens",
												  "topP",
												  "stopSequences"};

static bool
has_generation_config(const LgRequest *req)
{
	return req->opt.temperature || req->opt.top_p || req->opt.max_tokens > 0 ||
		   req->opt.stop != NIL;
}

static void
append_generation_config(StringInfo b, bool *outer_first, const LgRequest *req)
{
	bool first = true;

	lg_json_append_key(b, outer_first, "generationConfig");
	appendStringInfoChar(b, '{');
	lg_json_append_options(b, &first, req, &gemini_option_names);
	appendStringInfoChar(b, '}');
}

static void
append_text_parts(StringInfo b, const char *text)
{
	appendStringInfoString(b, "\"parts\":[{\"text\":");
	lg_json_append_string(b, text);
	appendStringInfoString(b, "}]");
}

static void
append_body(StringInfo       b,
			const LgRequest *req,
			const char      *system,
			const LgTurn    *turns,
			int              nturns)
{
	bool first = true;

	appendStringInfoChar(b, '{');
	lg_json_append_key(b, &first, "contents");
	appendStringInfoChar(b, '[');
	for (int i = 0; i < nturns; i++)
	{
		appendStringInfoString(b, i > 0 ? ",{\"role\":" : "{\"role\":");
		escape_json(b, turns[i].role == LG_ROLE_ASSISTANT ? "model" : "user");
		appendStringInfoChar(b, ',');
		append_text_parts(b, turns[i].text.data);
		appendStringInfoChar(b, '}');
	}
	appendStringInfoChar(b, ']');
	if (system)
	{
		lg_json_append_key(b, &first, "systemInstruction");
		appendStringInfoChar(b, '{');
		append_text_parts(b, system);
		appendStringInfoChar(b, '}');
	}
	if (has_generation_config(req))
		append_generation_config(b, &first, req);
	appendStringInfoChar(b, '}');
}

static void
gemini_build(const LgRequest    *req,
			 const LgDeployment *dep,
			 const char         *api_key,
			 LgHttpRequest      *http)
{
	StringInfoData body;
	LgTurn        *turns;
	char          *system;
	int            nturns = lg_conversation_turns(req, &system, &turns);

	http->url = psprintf("%s/v1beta/models/%s:generateContent",
						 dep->provider.base_url,
						 lg_url_path_segment(dep->upstream_model));
	http->headers = lg_request_headers(dep, NULL);
	if (api_key)
		http->headers =
			lappend(http->headers, psprintf("x-goog-api-key: %s", api_key));
	initStringInfo(&body);
	append_body(&body, req, system, turns, nturns);
	http->body = body.data;
	http->body_len = body.len;
}

/* ---- replies ---- */

enum
{
	F_ID,
	F_MODEL,
	F_TEXT,
	F_FINISH,
	F_CANDIDATE,
	F_BLOCKED,
	F_PROMPT,
	F_CANDIDATES,
	F_CACHED,
	F_THOUGHTS,
	NFIELDS
};

/* Gemini's finish reasons in the gateway's (OpenAI's) vocabulary. */
static char *
finish_reason(const char *reason)
{
	static const char *const filtered[] = {"SAFETY",
										   "RECITATION",
										   "BLOCKLIST",
										   "PROHIBITED_CONTENT",
										   "SPII",
										   "IMAGE_SAFETY"};

	if (reason == NULL)
		return NULL;
	if (strcmp(reason, "STOP") == 0)
		return pstrdup("stop");
	if (strcmp(reason, "MAX_TOKENS") == 0)
		return pstrdup("length");
	for (int i = 0; i < (int) lengthof(filtered); i++)
		if (strcmp(reason, filtered[i]) == 0)
			return pstrdup("content_filter");
	{
		char *lower = pstrdup(reason);

		for (char *c = lower; *c; c++)
			*c = pg_ascii_tolower((unsigned char) *c);
		return lower;
	}
}

static bool
gemini_parse_reply(const char *body, size_t len, LgReply *reply, char **why)
{
	LgJsonField f[NFIELDS] = {
		[F_ID] = {.path = "responseId"},
		[F_MODEL] = {.path = "modelVersion"},
		[F_TEXT] = {.path = "candidates.0.content.parts.*.text",
					.concat = true},
		[F_FINISH] = {.path = "candidates.0.finishReason"},
		[F_CANDIDATE] = {.path = "candidates.0.index"},
		[F_BLOCKED] = {.path = "promptFeedback.blockReason"},
		[F_PROMPT] = {.path = "usageMetadata.promptTokenCount"},
		[F_CANDIDATES] = {.path = "usageMetadata.candidatesTokenCount"},
		[F_CACHED] = {.path = "usageMetadata.cachedContentTokenCount"},
		[F_THOUGHTS] = {.path = "usageMetadata.thoughtsTokenCount"},
	};
	LgUsage *u = &reply->usage;

	if (!lg_json_extract(body, len, f, NFIELDS, why))
		return false;
	if (!f[F_TEXT].found && !f[F_FINISH].found && !f[F_CANDIDATE].found &&
		!f[F_BLOCKED].found)
	{
		*why = pstrdup("the response has no candidates[0]");
		return false;
	}
	memset(reply, 0, sizeof(*reply));
	reply->content = lg_json_server_string(&f[F_TEXT]);
	/* a blocked prompt has no candidate at all, only promptFeedback */
	reply->finish_reason =
		f[F_FINISH].found ? finish_reason(lg_json_server_string(&f[F_FINISH]))
		: f[F_BLOCKED].found ? pstrdup("content_filter")
							 : NULL;
	reply->provider_request_id = lg_json_server_string(&f[F_ID]);
	reply->upstream_model = lg_json_server_string(&f[F_MODEL]);
	reply->has_usage = f[F_PROMPT].found || f[F_CANDIDATES].found;
	u->input_tokens = lg_json_count(&f[F_PROMPT]);
	u->cached_tokens = Min(lg_json_count(&f[F_CACHED]), u->input_tokens);
	u->reasoning_tokens = lg_json_count(&f[F_THOUGHTS]);
	u->output_tokens = lg_json_count(&f[F_CANDIDATES]) + u->reasoning_tokens;
	return true;
}

static void
gemini_parse_error(const char *body, size_t len, LgProviderError *err)
{
	lg_parse_error_fields(body,
						  len,
						  err,
						  "error.message",
						  "error.status",
						  NULL);
}

const LgProviderOps lg_gemini_ops = {
	.build = gemini_build,
	.parse_reply = gemini_parse_reply,
	.parse_error = gemini_parse_error,
};

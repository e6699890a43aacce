/*
 * provider_openai.c — the OpenAI Chat Completions protocol.
 *
 * Kind "openai" covers every OpenAI-compatible endpoint (OpenAI, Groq,
 * OpenRouter, Vercel AI Gateway, vLLM, Ollama): POST {base_url}/chat/completions
 * with a Bearer token.  Kind "azure_openai" is the same body and reply behind
 * a deployment URL, an api-version parameter and an api-key header.
 *
 * The real services reject unknown top-level fields, so the body carries only
 * model, messages and the options the caller set.  Replies are read
 * defensively: extra fields are ignored, and null or missing ones are
 * tolerated where the protocol allows it.
 *
 * Token semantics: prompt_tokens INCLUDES cached_tokens; completion_tokens
 * includes reasoning_tokens.  That is also the gateway's own convention.
 */
#include "provider.h"

#define DEFAULT_AZURE_API_VERSION "2024-10-21"

static const LgOptionNames openai_option_names = {"temperature",
												  "max_tokens",
												  "top_p",
												  "stop"};

static void
append_body(StringInfo b, const LgRequest *req, const char *model)
{
	bool first = true;
	appendStringInfoChar(b, '{');
	if (model)
	{
		lg_json_append_key(b, &first, "model");
		lg_json_append_string(b, model);
	}
	lg_json_append_key(b, &first, "messages");
	appendStringInfoChar(b, '[');
	for (int i = 0; i < req->nmessages; i++)
	{
		appendStringInfoString(b, i > 0 ? ",{\"role\":" : "{\"role\":");
		escape_json(b, lg_role_name(req->messages[i].role));
		appendStringInfoString(b, ",\"content\":");
		lg_json_append_string(b, req->messages[i].content);
		appendStringInfoChar(b, '}');
	}
	appendStringInfoChar(b, ']');
	lg_json_append_options(b, &first, req, &openai_option_names);
	appendStringInfoChar(b, '}');
}

static void
finish_request(LgHttpRequest *http, StringInfo body)
{
	http->body = body->data;
	http->body_len = body->len;
}

static void
openai_build(const LgRequest    *req,
			 const LgDeployment *dep,
			 const char         *api_key,
			 LgHttpRequest      *http)
{
	StringInfoData body;

	http->url = psprintf("%s/chat/completions", dep->provider.base_url);
	http->headers = lg_request_headers(dep, NULL);
	if (api_key)
		http->headers = lappend(http->headers,
								psprintf("Authorization: Bearer %s", api_key));
	initStringInfo(&body);
	append_body(&body, req, dep->upstream_model);
	finish_request(http, &body);
}

static void
azure_build(const LgRequest    *req,
			const LgDeployment *dep,
			const char         *api_key,
			LgHttpRequest      *http)
{
	StringInfoData body;

	http->url =
		psprintf("%s/openai/deployments/%s/chat/completions?api-version=%s",
				 dep->provider.base_url,
				 lg_url_path_segment(dep->upstream_model),
				 dep->provider.api_version ? dep->provider.api_version
										   : DEFAULT_AZURE_API_VERSION);
	http->headers = lg_request_headers(dep, NULL);
	if (api_key)
		http->headers =
			lappend(http->headers, psprintf("api-key: %s", api_key));
	initStringInfo(&body);
	append_body(&body, req, NULL); /* the deployment names the model */
	finish_request(http, &body);
}

/* ---- replies ---- */

enum
{
	F_ID,
	F_MODEL,
	F_CONTENT,
	F_FINISH,
	F_PROMPT,
	F_COMPLETION,
	F_CACHED,
	F_REASONING,
	F_ERROR_MESSAGE,
	NFIELDS
};

static bool
openai_parse_reply(const char *body, size_t len, LgReply *reply, char **why)
{
	LgJsonField f[NFIELDS] = {
		[F_ID] = {.path = "id"},
		[F_MODEL] = {.path = "model"},
		[F_CONTENT] = {.path = "choices.0.message.content"},
		[F_FINISH] = {.path = "choices.0.finish_reason"},
		[F_PROMPT] = {.path = "usage.prompt_tokens"},
		[F_COMPLETION] = {.path = "usage.completion_tokens"},
		[F_CACHED] = {.path = "usage.prompt_tokens_details.cached_tokens"},
		[F_REASONING] =
			{.path = "usage.completion_tokens_details.reasoning_tokens"},
		[F_ERROR_MESSAGE] = {.path = "error.message"},
	};

	if (!lg_json_extract(body, len, f, NFIELDS, why))
		return false;
	if (!f[F_CONTENT].found && !f[F_CONTENT].is_null && !f[F_FINISH].found)
	{
		*why = f[F_ERROR_MESSAGE].found
				   ? psprintf("the response carries an error instead of "
							  "choices: %s",
							  f[F_ERROR_MESSAGE].value.data)
				   : pstrdup("the response has no choices[0].message");
		return false;
	}
	memset(reply, 0, sizeof(*reply));
	reply->content = lg_json_server_string(&f[F_CONTENT]);
	reply->finish_reason = lg_json_server_string(&f[F_FINISH]);
	reply->provider_request_id = lg_json_server_string(&f[F_ID]);
	reply->upstream_model = lg_json_server_string(&f[F_MODEL]);
	reply->has_usage = f[F_PROMPT].found || f[F_COMPLETION].found;
	reply->usage.input_tokens = lg_json_count(&f[F_PROMPT]);
	reply->usage.output_tokens = lg_json_count(&f[F_COMPLETION]);
	reply->usage.cached_tokens =
		Min(lg_json_count(&f[F_CACHED]), reply->usage.input_tokens);
	reply->usage.reasoning_tokens =
		Min(lg_json_count(&f[F_REASONING]), reply->usage.output_tokens);
	return true;
}

static void
openai_parse_error(const char *body, size_t len, LgProviderError *err)
{
	lg_parse_error_fields(body,
						  len,
						  err,
						  "error.message",
						  "error.code",
						  "error.type");
}

const LgProviderOps lg_openai_ops = {
	.build = openai_build,
	.parse_reply = openai_parse_reply,
	.parse_error = openai_parse_error,
};

const LgProviderOps lg_azure_openai_ops = {
	.build = azure_build,
	.parse_reply = openai_parse_reply,
	.parse_error = openai_parse_error,
};

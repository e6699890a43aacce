/*
 * provider.h — the provider protocols: building a request, reading the
 * answer and the errors (provider.c, provider_openai.c,
 * provider_anthropic.c, provider_gemini.c).
 */
#ifndef LG_PROVIDER_H
#define LG_PROVIDER_H

#include "http.h"

typedef struct LgProviderError
{
	char *message; /* the provider's own words, may be NULL */
	char *code;    /* its error code or type, may be NULL */
} LgProviderError;

typedef struct LgProviderOps
{
	void (*build)(const LgRequest    *req,
				  const LgDeployment *dep,
				  const char         *api_key,
				  LgHttpRequest      *http);
	bool (*parse_reply)(const char *body,
						size_t      len,
						LgReply    *reply,
						char      **why);
	void (*parse_error)(const char *body, size_t len, LgProviderError *err);
} LgProviderOps;

extern const LgProviderOps lg_openai_ops;
extern const LgProviderOps lg_azure_openai_ops;
extern const LgProviderOps lg_anthropic_ops;
extern const LgProviderOps lg_gemini_ops;

/*
 * A conversation as the two-role protocols want it: the system messages
 * joined into one text, and consecutive messages of the same role merged.
 */
typedef struct LgTurn
{
	LgRole         role; /* LG_ROLE_USER or LG_ROLE_ASSISTANT */
	StringInfoData text;
} LgTurn;

extern int lg_conversation_turns(const LgRequest *req,
								 char           **system_text,
								 LgTurn         **turns);
/* What each protocol calls the sampling options (NULL: not sent here). */
typedef struct LgOptionNames
{
	const char *temperature;
	const char *max_tokens;
	const char *top_p;
	const char *stop;
} LgOptionNames;

extern void  lg_json_append_options(StringInfo           b,
									bool                *first,
									const LgRequest     *req,
									const LgOptionNames *names);
extern List *lg_request_headers(const LgDeployment *dep,
								const char         *protocol_header);
extern void  lg_parse_error_fields(const char      *body,
								   size_t           len,
								   LgProviderError *err,
								   const char      *message_path,
								   const char      *code_path,
								   const char      *fallback_code_path);
extern int64 lg_json_count(const LgJsonField *field);
extern char *lg_json_server_string(const LgJsonField *field);
extern char *lg_url_path_segment(const char *s);

/* JSON writing helpers shared by the request builders. */
extern void lg_json_append_string(StringInfo buf, const char *server_text);
extern void lg_json_append_key(StringInfo buf, bool *first, const char *key);

#endif /* LG_PROVIDER_H */

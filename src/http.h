/*
 * http.h — one HTTP exchange over libcurl (http.c), and pulling scalar
 * fields out of a JSON body (json_extract.c).  Used by the provider
 * protocols, webhook delivery and the exchange-rate refresh.
 */
#ifndef LG_HTTP_H
#define LG_HTTP_H

#include "llm_gateway.h"

/* ---- HTTP (http.c) ---- */
typedef enum LgHttpFailure
{
	LG_HTTP_OK = 0,
	LG_HTTP_TIMEOUT,
	LG_HTTP_CONNECT,
	LG_HTTP_TOO_LARGE,
	LG_HTTP_OTHER
} LgHttpFailure;

typedef struct LgHttpRequest
{
	char  *url;
	List  *headers; /* "Name: value" strings; may hold secrets */
	char  *body;    /* NULL: a GET */
	size_t body_len;
	int32  timeout_ms;
	int32  connect_timeout_ms;
} LgHttpRequest;

typedef struct LgHttpResponse
{
	LgHttpFailure failure;
	long          status;
	char         *body; /* palloc'd, NUL-terminated */
	size_t        body_len;
	char          content_type[128];
	char          content_encoding[32];
	char          retry_after[32];
	char          request_id[128];
	char          error[256]; /* transport error text when failure != OK */
	bool          reused_connection;
} LgHttpResponse;

extern void lg_http_send(const LgHttpRequest *req, LgHttpResponse *resp);
extern void lg_http_wipe_request(LgHttpRequest *req);

/* ---- JSON field extraction (json_extract.c) ---- */
typedef struct LgJsonField
{
	const char    *path;   /* dotted path, "*" matches any array index */
	bool           concat; /* append every match instead of the first */
	bool           found;
	bool           is_null;
	bool           is_number;
	StringInfoData value; /* UTF-8 text of the scalar(s) */
} LgJsonField;

extern bool lg_json_extract(const char  *json,
							size_t       len,
							LgJsonField *fields,
							int          nfields,
							char       **why);

#endif /* LG_HTTP_H */

/*
 * http.c — provider requests over libcurl.
 *
 * One multi handle and one easy handle live for the whole backend.  The
 * connection cache belongs to the multi handle, so every call to the same
 * provider host reuses the kept-alive connection (HTTP/1.1 keep-alive or one
 * HTTP/2 connection) instead of paying a new TCP and TLS handshake.
 *
 * The transfer runs in a loop of curl_multi_perform() and curl_multi_poll()
 * with a short poll timeout.  Every signal the server sends a backend (query
 * cancel, statement_timeout, pg_terminate_backend) interrupts poll(), and the
 * loop runs CHECK_FOR_INTERRUPTS() each round, so a transfer is abandoned
 * within POLL_MS of the request.
 *
 * Memory rules (the crash pgsql-http documents): libcurl never keeps a
 * pointer into palloc'd memory beyond one lg_http_send() call.  The response
 * is collected with malloc, because the write callback runs inside libcurl
 * and must not longjmp; the header list is libcurl's own copy.  Both are
 * released in PG_FINALLY, on success, error and cancel alike, and the easy
 * handle is reset so it forgets the caller's buffers.  Header lines may carry
 * an API key, so they are wiped before they are freed.
 */
#include "http.h"

#include <curl/curl.h>

#include "pgstat.h"
#include "utils/wait_event.h"

#define POLL_MS        20
#define INITIAL_BUFFER 16384

/* Check every curl_easy_setopt and name the option when it fails. */
#define SETOPT(handle, option, value)                                 \
	do                                                                \
	{                                                                 \
		CURLcode rc_ = curl_easy_setopt((handle), (option), (value)); \
		if (rc_ != CURLE_OK)                                          \
			ereport(ERROR,                                            \
					(errcode(ERRCODE_INTERNAL_ERROR),                 \
					 errmsg("could not set libcurl option %s: %s",    \
							#option,                                  \
							curl_easy_strerror(rc_))));               \
	} while (0)

typedef struct Transfer
{
	char           *buf; /* malloc'd */
	size_t          len;
	size_t          cap;
	size_t          max;
	bool            too_large;
	bool            out_of_memory;
	LgHttpResponse *resp;
	char            errbuf[CURL_ERROR_SIZE];
} Transfer;

static CURLM *lg_multi = NULL;
static CURL  *lg_easy = NULL;

static void
http_init(void)
{
	if (lg_easy != NULL)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));
	lg_multi = curl_multi_init();
	if (lg_multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(lg_multi, CURLMOPT_MAXCONNECTS, 32L);
	lg_easy = curl_easy_init();
	if (lg_easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
}

/* Runs inside libcurl: must not ereport.  Returning short aborts the transfer. */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	Transfer *t = (Transfer *) userdata;
	size_t    n = size * nmemb;

	if (t->len + n > t->max)
	{
		t->too_large = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap)
	{
		size_t cap = t->cap ? t->cap : INITIAL_BUFFER;
		char  *grown;

		while (cap < t->len + n + 1)
			cap *= 2;
		grown = realloc(t->buf, cap);
		if (grown == NULL)
		{
			t->out_of_memory = true;
			return 0;
		}
		t->buf = grown;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	return n;
}

static void
copy_header_value(char *dst, size_t dstlen, const char *value, size_t len)
{
	while (len > 0 && (*value == ' ' || *value == '\t'))
		value++, len--;
	while (len > 0 && (value[len - 1] == '\r' || value[len - 1] == '\n' ||
					   value[len - 1] == ' '))
		len--;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, value, len);
	dst[len] = '\0';
}

static bool
header_is(const char  *line,
		  size_t       len,
		  const char  *name,
		  const char **value,
		  size_t      *vlen)
{
	size_t nlen = strlen(name);

	if (len <= nlen || line[nlen] != ':' ||
		pg_strncasecmp(line, name, nlen) != 0)
		return false;
	*value = line + nlen + 1;
	*vlen = len - nlen - 1;
	return true;
}

/* Runs inside libcurl: must not ereport. */
static size_t
header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
	Transfer       *t = (Transfer *) userdata;
	LgHttpResponse *r = t->resp;
	size_t          len = size * nitems;
	const char     *v;
	size_t          vlen;

	/* A new status line (after 100 Continue, say) starts a new header set. */
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		r->content_type[0] = r->content_encoding[0] = '\0';
		r->retry_after[0] = r->request_id[0] = '\0';
	}
	else if (header_is(line, len, "content-type", &v, &vlen))
		copy_header_value(r->content_type, sizeof(r->content_type), v, vlen);
	else if (header_is(line, len, "content-encoding", &v, &vlen))
		copy_header_value(r->content_encoding,
						  sizeof(r->content_encoding),
						  v,
						  vlen);
	else if (header_is(line, len, "retry-after", &v, &vlen))
		copy_header_value(r->retry_after, sizeof(r->retry_after), v, vlen);
	else if (header_is(line, len, "x-request-id", &v, &vlen) ||
			 header_is(line, len, "request-id", &v, &vlen))
		copy_header_value(r->request_id, sizeof(r->request_id), v, vlen);
	return len;
}

static struct curl_slist *
append_header(struct curl_slist *list, const char *line)
{
	struct curl_slist *grown = curl_slist_append(list, line);

	if (grown == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building HTTP headers")));
	return grown;
}

static void
wipe_and_free_headers(struct curl_slist *list)
{
	for (struct curl_slist *h = list; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(list);
}

/*
 * The options every request has, set once per handle (and again when
 * llm_gateway.ca_bundle changes): re-setting two dozen options and their
 * string copies per request was a measurable part of a call.
 */
static char *configured_ca = NULL; /* the ca_bundle the handle has */

static void
setup_constant(CURL *h)
{
	const char *ca = lg_ca_bundle ? lg_ca_bundle : "";

	if (configured_ca != NULL && strcmp(configured_ca, ca) == 0)
		return;
	curl_easy_reset(h);
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	SETOPT(h, CURLOPT_NOPROGRESS, 1L);
	SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca[0])
		SETOPT(h, CURLOPT_CAINFO, ca);
	SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(h, CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(h, CURLOPT_USERAGENT, "llm_gateway/" EXTVERSION);
	SETOPT(h, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(h, CURLOPT_HEADERFUNCTION, header_cb);
	free(configured_ca);
	configured_ca = strdup(ca);
	if (configured_ca == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory configuring libcurl")));
}

/* The options of this request; release_easy() takes its pointers back. */
static void
setup_easy(const LgHttpRequest *req, struct curl_slist *headers, Transfer *t)
{
	CURL *h = lg_easy;

	setup_constant(h);
	SETOPT(h, CURLOPT_URL, req->url);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long) req->connect_timeout_ms);
	SETOPT(h, CURLOPT_TIMEOUT_MS, (long) req->timeout_ms);
	SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) t->max);
	if (req->body == NULL)
		SETOPT(h, CURLOPT_HTTPGET, 1L);
	else
	{
		SETOPT(h, CURLOPT_POST, 1L);
		SETOPT(h, CURLOPT_POSTFIELDS, req->body);
		SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	}
	SETOPT(h, CURLOPT_HTTPHEADER, headers);
	SETOPT(h, CURLOPT_WRITEDATA, t);
	SETOPT(h, CURLOPT_HEADERDATA, t);
	SETOPT(h, CURLOPT_ERRORBUFFER, t->errbuf);
}

/*
 * After a request: the handle must keep no pointer into its memory (body,
 * header list, buffers on the stack), which is freed now.
 */
static void
release_easy(void)
{
	curl_easy_setopt(lg_easy, CURLOPT_POSTFIELDS, (char *) NULL);
	curl_easy_setopt(lg_easy, CURLOPT_HTTPHEADER, (struct curl_slist *) NULL);
	curl_easy_setopt(lg_easy, CURLOPT_WRITEDATA, (void *) NULL);
	curl_easy_setopt(lg_easy, CURLOPT_HEADERDATA, (void *) NULL);
	curl_easy_setopt(lg_easy, CURLOPT_ERRORBUFFER, (char *) NULL);
}

/* Drive the transfer to its end; interrupts abort it by ereport. */
static CURLcode
run_transfer(void)
{
	CURLMsg *msg;
	int      running = 1;
	int      pending;

	while (running)
	{
		CURLMcode mc;

		CHECK_FOR_INTERRUPTS();
		mc = curl_multi_perform(lg_multi, &running);
		if (mc == CURLM_OK && running)
			mc = curl_multi_poll(lg_multi, NULL, 0, POLL_MS, NULL);
		if (mc != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("libcurl multi interface failed: %s",
							curl_multi_strerror(mc))));
	}
	while ((msg = curl_multi_info_read(lg_multi, &pending)) != NULL)
	{
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == lg_easy)
			return msg->data.result;
	}
	return CURLE_RECV_ERROR;
}

static LgHttpFailure
classify(CURLcode rc, const Transfer *t)
{
	switch (rc)
	{
		case CURLE_OK:
			return LG_HTTP_OK;
		case CURLE_OPERATION_TIMEDOUT:
			return LG_HTTP_TIMEOUT;
		case CURLE_FILESIZE_EXCEEDED:
			return LG_HTTP_TOO_LARGE;
		case CURLE_WRITE_ERROR:
			return t->too_large ? LG_HTTP_TOO_LARGE : LG_HTTP_OTHER;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_BAD_CONTENT_ENCODING:
			return LG_HTTP_CONNECT;
		default:
			return LG_HTTP_OTHER;
	}
}

static void
finish_response(CURLcode rc, Transfer *t, LgHttpResponse *resp)
{
	long new_connections = 0;

	if (t->out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory reading a provider response")));
	resp->failure = classify(rc, t);
	curl_easy_getinfo(lg_easy, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_easy_getinfo(lg_easy, CURLINFO_NUM_CONNECTS, &new_connections);
	resp->reused_connection = (new_connections == 0);
	if (resp->failure != LG_HTTP_OK)
		strlcpy(resp->error,
				t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc),
				sizeof(resp->error));
	resp->body = palloc(t->len + 1);
	if (t->len > 0)
		memcpy(resp->body, t->buf, t->len);
	resp->body[t->len] = '\0';
	resp->body_len = t->len;
}

void
lg_http_send(const LgHttpRequest *req, LgHttpResponse *resp)
{
	Transfer t;
	struct curl_slist *volatile headers = NULL;
	volatile bool added = false;
	ListCell     *lc;

	lg_url_check(req->url, "the request");
	memset(resp, 0, sizeof(*resp));
	memset(&t, 0, sizeof(t));
	t.max = (size_t) lg_max_response_kb * 1024;
	t.resp = resp;
	http_init();

	PG_TRY();
	{
		CURLMcode mc;

		foreach (lc, req->headers)
			headers = append_header(headers, (const char *) lfirst(lc));
		/* libcurl would otherwise wait for "100 Continue" on large bodies */
		headers = append_header(headers, "Expect:");
		setup_easy(req, headers, &t);
		mc = curl_multi_add_handle(lg_multi, lg_easy);
		if (mc != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("libcurl multi interface failed: %s",
							curl_multi_strerror(mc))));
		added = true;
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		finish_response(run_transfer(), &t, resp);
	}
	PG_FINALLY();
	{
		pgstat_report_wait_end();
		if (added)
			curl_multi_remove_handle(lg_multi, lg_easy);
		release_easy();
		wipe_and_free_headers(headers);
		free(t.buf);
	}
	PG_END_TRY();
}

/* Wipe what a request may hold of a secret: its header lines. */
void
lg_http_wipe_request(LgHttpRequest *req)
{
	ListCell *lc;

	foreach (lc, req->headers)
	{
		char *line = (char *) lfirst(lc);

		explicit_bzero(line, strlen(line));
	}
}

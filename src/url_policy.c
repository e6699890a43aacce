/*
 * url_policy.c — which URLs the gateway may send a request to.
 *
 * Only http and https.  Plain http carries the API key and the prompts in
 * clear, so it is allowed only to loopback (a local model server, a test
 * mock) and to the hosts an administrator lists in
 * llm_gateway.allowed_http_hosts ("*" for any).  The check runs when a URL
 * is configured (llm_provider_set, llm_budget_set) and again before every
 * request, since the setting may have changed since.
 */
#include "llm_gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(llm_gateway_url_check);

/*
 * The host of an http:// URL (without brackets for IPv6), in palloc'd
 * memory; NULL when the URL has none.
 */
static char *
http_host(const char *url)
{
	const char *h = url + strlen("http://");
	size_t      len;

	if (*h == '[')
	{
		const char *end = strchr(h, ']');

		return end ? pnstrdup(h + 1, end - h - 1) : NULL;
	}
	len = strcspn(h, ":/?#");
	return len > 0 ? pnstrdup(h, len) : NULL;
}

static bool
is_loopback(const char *host)
{
	struct in_addr  v4;
	struct in6_addr v6;

	if (pg_strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127; /* 127.0.0.0/8 */
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
	return false;
}

/* Whether host is in llm_gateway.allowed_http_hosts. */
static bool
is_listed(const char *host)
{
	const char *s = lg_allowed_http_hosts ? lg_allowed_http_hosts : "";

	while (*s)
	{
		size_t len;

		while (*s == ',' || *s == ' ' || *s == '\t')
			s++;
		len = strcspn(s, ", \t");
		if (len == 1 && s[0] == '*')
			return true;
		if (len > 0 && len == strlen(host) &&
			pg_strncasecmp(s, host, len) == 0)
			return true;
		s += len;
	}
	return false;
}

/*
 * Whether url may be requested: cheap, so callers can test before paying
 * for the label lg_url_check's message needs.
 */
bool
lg_url_is_allowed(const char *url)
{
	char *host;
	bool  ok;

	if (pg_strncasecmp(url, "https://", 8) == 0)
		return true;
	if (pg_strncasecmp(url, "http://", 7) != 0)
		return false;
	host = http_host(url);
	if (host == NULL)
		return false;
	ok = is_loopback(host) || is_listed(host);
	pfree(host);
	return ok;
}

/*
 * Raise LG053 unless url may be requested.  what names its owner for the
 * message ("provider \"openai\"", "the budget webhook").
 */
void
lg_url_check(const char *url, const char *what)
{
	char *host;

	if (lg_url_is_allowed(url))
		return;
	if (pg_strncasecmp(url, "http://", 7) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_LG_URL_REFUSED),
				 errmsg("the URL of %s is refused: only http and https are "
						"allowed",
						what)));
	host = http_host(url);
	if (host == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LG_URL_REFUSED),
				 errmsg("the URL of %s has no host", what)));
	/* an http URL whose host is neither loopback nor listed */
	ereport(ERROR,
			(errcode(ERRCODE_LG_URL_REFUSED),
			 errmsg("plain http to \"%s\" is refused (%s)", host, what),
			 errdetail("Over http the API key and the prompts would "
					   "cross the network in clear."),
			 errhint("Use https, or list the host in "
					 "llm_gateway.allowed_http_hosts.")));
}

/*
 * llm_gateway.url_check(url text, what text) RETURNS void: lg_url_check at
 * configuration time.
 */
Datum
llm_gateway_url_check(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		lg_url_check(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					 PG_ARGISNULL(1) ? "the URL"
									 : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

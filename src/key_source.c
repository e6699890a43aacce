/*
 * key_source.c — where a provider's API key comes from at call time.
 *
 * A provider holds at most one of:
 *
 *   api_key       sealed with the master key (crypto.c)
 *   api_key_env   the name of a variable in the server's environment
 *   api_key_file  the path of a file private to the server
 *
 * The last two keep the key out of every SQL text, log line and table: the
 * catalog holds only a name.  They are read at each call, so a key replaced
 * in the file (or in the environment of a restarted server) is used at the
 * next call.  A key read from either must look like a key (no spaces or
 * control characters): it goes into an HTTP header.
 *
 * Problems are reported by text so that llm_provider_set() can warn about
 * them at configuration time and a call can raise them (LG052).
 */
#include "llm_gateway.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utils/builtins.h"

#define MAX_KEY_LEN 8192

PG_FUNCTION_INFO_V1(llm_gateway_key_source_problem);

/* NULL when s is usable as a key, else why not. */
static const char *
key_shape_problem(const char *s, size_t len)
{
	if (len == 0)
		return "is empty";
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c <= ' ' || c == 0x7f)
			return "contains a space or a control character";
	}
	return NULL;
}

static const char *
env_key(const char *name, char **key)
{
	const char *value = getenv(name);
	const char *shape;

	*key = NULL;
	if (value == NULL)
		return psprintf("environment variable \"%s\" is not set in the "
						"server's environment",
						name);
	if (strlen(value) > MAX_KEY_LEN)
		return psprintf("environment variable \"%s\" is longer than %d bytes",
						name,
						MAX_KEY_LEN);
	shape = key_shape_problem(value, strlen(value));
	if (shape)
		return psprintf("environment variable \"%s\" %s", name, shape);
	*key = pstrdup(value);
	return NULL;
}

/* Read at most MAX_KEY_LEN + 1 bytes of an open file into buf. */
static ssize_t
read_all(int fd, char *buf)
{
	ssize_t total = 0;

	while (total <= MAX_KEY_LEN)
	{
		ssize_t n = read(fd, buf + total, MAX_KEY_LEN + 1 - total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		total += n;
	}
	return total;
}

static const char *
file_key(const char *path, char **key)
{
	char        buf[MAX_KEY_LEN + 1];
	struct stat st;
	ssize_t     n = 0;
	int         fd;
	const char *problem = NULL;

	*key = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return psprintf("could not open key file \"%s\": %m", path);
	if (fstat(fd, &st) != 0)
		problem = psprintf("could not stat key file \"%s\": %m", path);
	else if (!lg_file_is_private(&st))
		problem = psprintf("key file \"%s\" is not a regular file private "
						   "to the server (owned by the database user with "
						   "mode 0600 or less, or by root with mode 0640 or "
						   "less)",
						   path);
	else if ((n = read_all(fd, buf)) < 0)
		problem = psprintf("could not read key file \"%s\": %m", path);
	else if (n > MAX_KEY_LEN)
		problem = psprintf("key file \"%s\" is longer than %d bytes",
						   path,
						   MAX_KEY_LEN);
	close(fd);
	if (problem == NULL)
	{
		const char *shape;

		/* one trailing line break is how editors and echo write files */
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		shape = key_shape_problem(buf, n);
		if (shape)
			problem = psprintf("key file \"%s\" %s", path, shape);
		else
			*key = pnstrdup(buf, n);
	}
	explicit_bzero(buf, sizeof(buf));
	return problem;
}

/*
 * The provider's key in palloc'd memory the caller wipes with
 * lg_secret_free(), or NULL when the provider has none.
 */
char *
lg_provider_key(const LgProvider *p)
{
	const char *problem;
	char       *key;

	if (p->api_key_enc != NULL)
		return lg_secret_decrypt(p->api_key_enc,
								 psprintf("provider:%s", p->name),
								 p->name);
	if (p->api_key_env != NULL)
		problem = env_key(p->api_key_env, &key);
	else if (p->api_key_file != NULL)
		problem = file_key(p->api_key_file, &key);
	else
		return NULL;
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_LG_KEY_SOURCE),
				 errmsg("the API key of provider \"%s\" is not available",
						p->name),
				 errdetail("The %s.", problem),
				 errhint(p->api_key_env
							 ? "Set the variable in the environment the "
							   "server is started with (systemd: "
							   "Environment= in its unit) and restart it, or "
							   "change the provider's api_key_env."
							 : "Create the file readable only by the server, "
							   "or change the provider's api_key_file.")));
	return key;
}

/*
 * llm_gateway.key_source_problem(env text, file text) RETURNS text
 *
 * Why the key named by an api_key_env (or api_key_file) cannot be read by
 * this server right now, or NULL when it can.  Never returns the key.
 */
Datum
llm_gateway_key_source_problem(PG_FUNCTION_ARGS)
{
	const char *problem;
	char       *key = NULL;

	if (!PG_ARGISNULL(0))
		problem = env_key(text_to_cstring(PG_GETARG_TEXT_PP(0)), &key);
	else if (!PG_ARGISNULL(1))
		problem = file_key(text_to_cstring(PG_GETARG_TEXT_PP(1)), &key);
	else
		PG_RETURN_NULL();
	lg_secret_free(key);
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/*
 * bench_client.c — the load generator of make bench: CLIENTS connections,
 * one thread each, running one prepared statement back to back for
 * SECONDS, timing every execution with the monotonic clock.  Prints
 * "calls/s p50 p99 mean" (milliseconds).
 *
 *   bench_client CONNINFO CLIENTS SECONDS SQL
 *
 * In SQL, $1 is a random integer (a prompt that misses the cache) and $2
 * the client's number (0 .. CLIENTS-1), when the statement uses them.
 * pgbench's own per-transaction latencies are read from a clock it updates
 * lazily, which rounds many of them to zero with several clients per
 * thread; hence this.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

typedef struct Client
{
	int       id;
	PGconn   *conn;
	double   *lat; /* milliseconds, one per call */
	size_t    n;
	size_t    cap;
	long      errors;
	pthread_t thread;
} Client;

static const char *sql;
static int         nparams;
static double      deadline;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void *
run(void *arg)
{
	Client      *c = arg;
	unsigned int seed = (unsigned int) (c->id * 7919 + time(NULL));
	char         rnd[24];
	char         id[16];
	const char  *values[2] = {rnd, id};
	PGresult    *res = PQprepare(c->conn, "q", sql, nparams, NULL);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "bench_client: %s", PQerrorMessage(c->conn));
		exit(1);
	}
	PQclear(res);
	snprintf(id, sizeof(id), "%d", c->id);
	while (now_ms() < deadline)
	{
		double start;

		snprintf(rnd, sizeof(rnd), "%d", rand_r(&seed));
		start = now_ms();
		res = PQexecPrepared(c->conn, "q", nparams, values, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK &&
			PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			if (c->errors++ == 0)
				fprintf(stderr, "bench_client: %s", PQerrorMessage(c->conn));
		}
		else
		{
			if (c->n == c->cap)
			{
				c->cap = c->cap ? c->cap * 2 : 65536;
				c->lat = realloc(c->lat, c->cap * sizeof(double));
				if (c->lat == NULL)
					exit(1);
			}
			c->lat[c->n++] = now_ms() - start;
		}
		PQclear(res);
	}
	return NULL;
}

static int
compare(const void *a, const void *b)
{
	double x = *(const double *) a;
	double y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	int     nclients;
	double  seconds;
	Client *clients;
	size_t  total = 0;
	double *all;
	double  sum = 0;
	long    errors = 0;

	if (argc != 5)
	{
		fprintf(stderr, "usage: bench_client CONNINFO CLIENTS SECONDS SQL\n");
		return 2;
	}
	nclients = atoi(argv[2]);
	seconds = atof(argv[3]);
	sql = argv[4];
	nparams = strstr(sql, "$2") ? 2 : strstr(sql, "$1") ? 1 : 0;
	clients = calloc(nclients, sizeof(Client));
	for (int i = 0; i < nclients; i++)
	{
		clients[i].id = i;
		clients[i].conn = PQconnectdb(argv[1]);
		if (PQstatus(clients[i].conn) != CONNECTION_OK)
		{
			fprintf(stderr,
					"bench_client: %s",
					PQerrorMessage(clients[i].conn));
			return 1;
		}
	}
	deadline = now_ms() + seconds * 1000.0;
	for (int i = 0; i < nclients; i++)
		pthread_create(&clients[i].thread, NULL, run, &clients[i]);
	for (int i = 0; i < nclients; i++)
	{
		pthread_join(clients[i].thread, NULL);
		total += clients[i].n;
		errors += clients[i].errors;
	}
	all = malloc((total + 1) * sizeof(double));
	total = 0;
	for (int i = 0; i < nclients; i++)
	{
		memcpy(&all[total], clients[i].lat, clients[i].n * sizeof(double));
		total += clients[i].n;
		PQfinish(clients[i].conn);
	}
	if (total == 0)
	{
		fprintf(stderr, "bench_client: no call succeeded\n");
		return 1;
	}
	qsort(all, total, sizeof(double), compare);
	for (size_t i = 0; i < total; i++)
		sum += all[i];
	printf("%.0f %.3f %.3f %.3f\n",
		   total / seconds,
		   all[total / 2],
		   all[(size_t) (total * 0.99)],
		   sum / total);
	if (errors > 0)
		fprintf(stderr, "bench_client: %ld calls failed\n", errors);
	return errors > 0;
}

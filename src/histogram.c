/*
 * histogram.c — latency distributions that add up: the rollups keep one per
 * row, merged with a plain element-wise sum, and any percentile is read
 * back from a merged one.
 *
 * Bucket b counts the latencies in [0.1 ms × 2^(b/4), 0.1 ms × 2^((b+1)/4))
 * — four buckets per doubling, LG_HIST_BUCKETS of them, from 0.1 ms to about
 * 100 s (the first bucket takes anything shorter, the last anything longer).
 * A percentile is the geometric middle of its bucket, so it is within 9% of
 * the true value.
 *
 * Stored, a histogram is an int8[] holding only the span from its first to
 * its last non-empty bucket, with that first bucket's number + 1 as the
 * array's lower bound: '[9:10]={3,1}' is three latencies in bucket 8 and one
 * in bucket 9.  A row of one call keeps one element, not eighty.  An empty
 * array (or NULL) is an empty histogram.  The aggregates keep the full
 * counts in their own memory while they run.
 *
 *   llm_gateway.hist_of(latency_ms)       the histogram of one value
 *   llm_gateway.latency_hist(latency_ms)  aggregate: the histogram of values
 *   llm_gateway.hist_add(a, b)            the sum of two histograms
 *   llm_gateway.hist_merge(h)             aggregate: the sum of histograms
 *   llm_gateway.hist_percentile(h, q)     the q-th quantile (0..1), in ms
 */
#include "llm_gateway.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/numeric.h"

#define LG_HIST_BUCKETS      80
#define LG_HIST_BASE_MS      0.1
#define LG_HIST_PER_DOUBLING 4.0

typedef struct HistCounts
{
	int64 counts[LG_HIST_BUCKETS];
} HistCounts;

PG_FUNCTION_INFO_V1(llm_gateway_hist_of);
PG_FUNCTION_INFO_V1(llm_gateway_hist_accum);
PG_FUNCTION_INFO_V1(llm_gateway_hist_merge_step);
PG_FUNCTION_INFO_V1(llm_gateway_hist_final);
PG_FUNCTION_INFO_V1(llm_gateway_hist_add);
PG_FUNCTION_INFO_V1(llm_gateway_hist_percentile);

static int
bucket_of(Datum latency_numeric)
{
	double ms =
		DatumGetFloat8(DirectFunctionCall1(numeric_float8, latency_numeric));
	double b;

	if (!(ms > LG_HIST_BASE_MS))
		return 0;
	b = floor(log2(ms / LG_HIST_BASE_MS) * LG_HIST_PER_DOUBLING);
	return (int) Min(b, LG_HIST_BUCKETS - 1);
}

/* Add a stored histogram (NULL: empty) into h. */
static void
add_stored(HistCounts *h, ArrayType *a)
{
	const int64 *v;
	int          first;
	int          n;

	if (a == NULL || ARR_NDIM(a) == 0)
		return;
	if (ARR_NDIM(a) != 1 || ARR_ELEMTYPE(a) != INT8OID || ARR_HASNULL(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a latency histogram is a one-dimensional bigint "
						"array without NULLs")));
	v = (const int64 *) ARR_DATA_PTR(a);
	first = ARR_LBOUND(a)[0] - 1;
	n = ARR_DIMS(a)[0];
	if (first < 0 || first + n > LG_HIST_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a latency histogram has buckets 1 to %d",
						LG_HIST_BUCKETS)));
	for (int i = 0; i < n; i++)
		h->counts[first + i] += v[i];
}

/* The stored form of h: its non-empty span only. */
static ArrayType *
to_stored(const HistCounts *h)
{
	Datum elems[LG_HIST_BUCKETS];
	int   first = 0;
	int   last = LG_HIST_BUCKETS - 1;
	int   dims[1];
	int   lbs[1];

	while (first < LG_HIST_BUCKETS && h->counts[first] == 0)
		first++;
	if (first == LG_HIST_BUCKETS)
		return construct_empty_array(INT8OID);
	while (h->counts[last] == 0)
		last--;
	for (int i = first; i <= last; i++)
		elems[i - first] = Int64GetDatum(h->counts[i]);
	dims[0] = last - first + 1;
	lbs[0] = first + 1;
	return construct_md_array(elems,
							  NULL,
							  1,
							  dims,
							  lbs,
							  INT8OID,
							  sizeof(int64),
							  FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE);
}

/* The running counts of an aggregate, made zero on its first row. */
static HistCounts *
agg_counts(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "a histogram aggregate step was called outside one");
	if (PG_ARGISNULL(0))
		return MemoryContextAllocZero(aggcxt, sizeof(HistCounts));
	return (HistCounts *) PG_GETARG_POINTER(0);
}

/* hist_of(latency_ms numeric) — NULL for a NULL latency. */
Datum
llm_gateway_hist_of(PG_FUNCTION_ARGS)
{
	HistCounts h;

	memset(&h, 0, sizeof(h));
	h.counts[bucket_of(PG_GETARG_DATUM(0))] = 1;
	PG_RETURN_ARRAYTYPE_P(to_stored(&h));
}

/* The step of latency_hist(numeric): one more value (NULLs not counted). */
Datum
llm_gateway_hist_accum(PG_FUNCTION_ARGS)
{
	HistCounts *h = agg_counts(fcinfo);

	if (!PG_ARGISNULL(1))
		h->counts[bucket_of(PG_GETARG_DATUM(1))]++;
	PG_RETURN_POINTER(h);
}

/* The step of hist_merge(int8[]): one more histogram. */
Datum
llm_gateway_hist_merge_step(PG_FUNCTION_ARGS)
{
	HistCounts *h = agg_counts(fcinfo);

	if (!PG_ARGISNULL(1))
		add_stored(h, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_POINTER(h);
}

/* The final function of both aggregates: NULL when no row was seen. */
Datum
llm_gateway_hist_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(to_stored((HistCounts *) PG_GETARG_POINTER(0)));
}

/* hist_add(a int8[], b int8[]) — the sum; a NULL is an empty histogram. */
Datum
llm_gateway_hist_add(PG_FUNCTION_ARGS)
{
	HistCounts h;

	memset(&h, 0, sizeof(h));
	if (!PG_ARGISNULL(0))
		add_stored(&h, PG_GETARG_ARRAYTYPE_P(0));
	if (!PG_ARGISNULL(1))
		add_stored(&h, PG_GETARG_ARRAYTYPE_P(1));
	PG_RETURN_ARRAYTYPE_P(to_stored(&h));
}

/* hist_percentile(h int8[], q float8) — NULL for an empty histogram. */
Datum
llm_gateway_hist_percentile(PG_FUNCTION_ARGS)
{
	HistCounts h;
	int64      total = 0;
	int64      seen = 0;
	double     q;
	double     rank;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	q = PG_GETARG_FLOAT8(1);
	if (!(q >= 0 && q <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the quantile must be between 0 and 1")));
	memset(&h, 0, sizeof(h));
	add_stored(&h, PG_GETARG_ARRAYTYPE_P(0));
	for (int i = 0; i < LG_HIST_BUCKETS; i++)
		total += h.counts[i];
	if (total == 0)
		PG_RETURN_NULL();
	rank = Max(ceil(q * total), 1);
	for (int i = 0; i < LG_HIST_BUCKETS; i++)
	{
		seen += h.counts[i];
		if (seen >= rank)
			PG_RETURN_FLOAT8(LG_HIST_BASE_MS *
							 pow(2.0, (i + 0.5) / LG_HIST_PER_DOUBLING));
	}
	PG_RETURN_NULL(); /* not reached */
}

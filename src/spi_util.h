/*
 * spi_util.h — small helpers for the extension's own catalog queries.
 *
 * Plans are prepared once per backend and kept (the plan cache revalidates
 * them after DDL).  Column readers copy results into a memory context that
 * outlives SPI_finish().
 */
#ifndef LG_SPI_UTIL_H
#define LG_SPI_UTIL_H

#include "llm_gateway.h"

extern SPIPlanPtr lg_spi_prepare_once(SPIPlanPtr *cache,
									  const char *sql,
									  int         nargs,
									  const Oid  *argtypes);
extern void       lg_spi_select(SPIPlanPtr plan, Datum *values);
extern Datum      lg_spi_col(int row, int column, bool *isnull);
extern char      *lg_spi_text(int row, int column, MemoryContext cxt);
extern int64      lg_spi_int64(int row, int column);
extern int32      lg_spi_int32(int row, int column);
extern bool       lg_spi_bool(int row, int column);
extern List      *lg_spi_text_list(int row, int column, MemoryContext cxt);

#endif /* LG_SPI_UTIL_H */

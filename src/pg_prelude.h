/*
 * pg_prelude.h — the PostgreSQL headers every llm_gateway file needs.
 *
 * Kept in one place so that version shims have a single home: the extension
 * targets PostgreSQL 15 and later.
 */
#ifndef LG_PG_PRELUDE_H
#define LG_PG_PRELUDE_H

#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#if PG_VERSION_NUM < 150000
#error "llm_gateway requires PostgreSQL 15 or later"
#endif

#endif /* LG_PG_PRELUDE_H */

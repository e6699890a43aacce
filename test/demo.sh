#!/usr/bin/env bash
# make demo: a throwaway cluster with llm_gateway preloaded, a tenant, a few
# calls, their results and the usage ledger, then everything is removed.
#
# The upstream is the built-in mock provider, or the real OpenAI API when
# OPENAI_API_KEY is set in the environment (the key is passed to psql as a
# variable and never printed).
set -euo pipefail

cd "$(dirname "$0")/.."
LG_ROOT=$PWD
. test/lib.sh

bash test/deps.sh
lg_setup_users
echo "== build and install"
lg_build_install "-Wall -Wextra -Werror"

MOCK_PID=
trap 'lg_cluster_stop; echo "== cleaned up"' EXIT
MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
lg_cluster_start demo "llm_gateway.master_key = '$MASTER_KEY'"
echo "== throwaway cluster in $WORK on port $PORT"

if [ -n "${OPENAI_API_KEY:-}" ]; then
    echo "== upstream: the real OpenAI API (OPENAI_API_KEY is set)"
    BASE_URL=https://api.openai.com/v1
    API_KEY=$OPENAI_API_KEY
    MOCK=off
else
    lg_start_mock "$WORK"
    echo "== upstream: the built-in mock provider on 127.0.0.1:$MOCK_PORT"
    BASE_URL=http://127.0.0.1:$MOCK_PORT/v1
    API_KEY=sk-mock-0123456789abcdef
    MOCK=on
fi

"${PSQL[@]}" -v base_url="$BASE_URL" -v api_key="$API_KEY" -v mock="$MOCK" \
    -f - < "$LG_ROOT/test/demo.sql"

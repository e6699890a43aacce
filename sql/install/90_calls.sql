-- llm_gateway install script, part 90_calls.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Calls
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.llm_complete(tenant text, model text, messages jsonb,
                                         options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_complete';
COMMENT ON FUNCTION @extschema@.llm_complete(text, text, jsonb, jsonb) IS
    'Complete a chat for a tenant through its gateway; returns content, usage and cost';

CREATE FUNCTION @extschema@.llm_providers_status()
RETURNS TABLE (provider text, kind text, status text, circuit text, in_flight integer,
               max_concurrency integer, requests_1m integer, errors_1m integer,
               error_rate numeric, avg_latency_ms numeric, rpm integer, tpm integer,
               tokens_1m bigint, consecutive_failures integer, last_error text,
               status_since timestamptz)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'llm_providers_status';
COMMENT ON FUNCTION @extschema@.llm_providers_status() IS
    'Every provider: effective status, circuit breaker, in-flight calls, last minute''s errors and latency';
REVOKE ALL ON FUNCTION @extschema@.llm_providers_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.llm_providers_status() TO llm_gateway_admin;

CREATE FUNCTION @extschema@.llm_health()
RETURNS jsonb
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'llm_health';
COMMENT ON FUNCTION @extschema@.llm_health() IS
    'healthy / degraded / unhealthy, with provider counts by status, the worker and the spend queue';

CREATE FUNCTION @extschema@.llm_maintenance(at timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_maintenance';
COMMENT ON FUNCTION @extschema@.llm_maintenance(timestamptz) IS
    'One pass of the background worker''s periodic work, run now; returns what it did';
REVOKE ALL ON FUNCTION @extschema@.llm_maintenance(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.llm_maintenance(timestamptz) TO llm_gateway_admin;

CREATE FUNCTION @extschema@.llm_chat(tenant text, model text, prompt text,
                                     options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_chat';
COMMENT ON FUNCTION @extschema@.llm_chat(text, text, text, jsonb) IS
    'One user message in, the answer''s text out';

---------------------------------------------------------------------------
-- Budgets and alerts
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.llm_budget_status(tenant text)
RETURNS jsonb
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_budget_status';
COMMENT ON FUNCTION @extschema@.llm_budget_status(text) IS
    'Every budget of a tenant: limit, used, reserved, percent, period, projection and state';

CREATE FUNCTION @extschema@.llm_alert_ack(alert_id bigint)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_alert_ack';
COMMENT ON FUNCTION @extschema@.llm_alert_ack(bigint) IS
    'Acknowledge an alert of a tenant you act for; false if it was acknowledged already';

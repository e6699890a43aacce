-- provider_errors: every way a provider can fail, each with its SQLSTATE, the
-- provider's own message, and never a secret.
-- These failures are the point here: keep the circuit breaker out of the way.
SELECT llm_provider_set('openai', NULL, '{"breaker_failures": 1000}') ->> 'breaker_failures';
\set m4 'openai/gpt-4o-mini'

SELECT llm_chat('acme', :'m4', 'x [[mock:status=400]][[mock:message=Invalid value for temperature]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=400]][[mock:code=context_length_exceeded]][[mock:message=This model''s maximum context length is 128000 tokens]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=401]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=403]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=404]][[mock:code=model_not_found]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=429]][[mock:retry_after=7]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=500]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=503]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:html]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:redirect=http://198.51.100.7/steal]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=418]]');
\echo :LAST_ERROR_SQLSTATE

-- malformed replies
SELECT llm_chat('acme', :'m4', 'x [[mock:malformed]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:wrong_shape]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:empty]]');
\echo :LAST_ERROR_SQLSTATE

-- the connection breaks
SELECT llm_chat('acme', :'m4', 'x [[mock:close]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:close_mid]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('nowhere', 'openai', '{"base_url": "http://127.0.0.1:1/v1", "api_key": "sk-unused"}') ->> 'name';
SELECT llm_model_set('test/nowhere', 'nowhere', '{"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}') ->> 'model';
\set VERBOSITY terse
SELECT llm_chat('acme', 'test/nowhere', 'x');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- too slow: the call's timeout_ms, then the provider's
SELECT llm_chat('acme', :'m4', 'x [[mock:slow_ms=5000]]', '{"timeout_ms": 300}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:trickle_ms=100]]', '{"timeout_ms": 400}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('openai', NULL, '{"timeout_ms": 300}') ->> 'timeout_ms';
SELECT llm_chat('acme', :'m4', 'x [[mock:slow_ms=5000]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('openai', NULL, '{"timeout_ms": null}') ->> 'timeout_ms';

-- too large: refused while streaming in (chunked) and from Content-Length
SET llm_gateway.max_response_size = '64kB';
SELECT llm_chat('acme', :'m4', 'x [[mock:oversize=200000]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:oversize=200000]][[mock:chunked]]');
\echo :LAST_ERROR_SQLSTATE
SELECT length(llm_chat('acme', :'m4', 'x [[mock:oversize=30000]]')) > 29000 AS fits;
RESET llm_gateway.max_response_size;

-- A provider that echoes the key in its error never gets it back to us.
SELECT llm_chat('acme', :'m4', 'x [[mock:status=401]][[mock:message=Incorrect API key provided: sk-mock-0123456789abcdef.]]');
\echo :LAST_ERROR_SQLSTATE

-- The server and the session are fine after all of that.
SELECT llm_chat('acme', :'m4', 'still here');
SELECT llm_provider_set('openai', NULL, '{"breaker_failures": 5}') ->> 'breaker_failures';

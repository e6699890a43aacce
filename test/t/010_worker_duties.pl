# The worker's duties, done on its own with a short interval: ledger
# partitions made ahead, rollups current and equal to the ledger — also for
# a call whose transaction stayed open while later calls committed —,
# missed budget periods closed, thresholds swept and counters reconciled
# without any call or llm_maintenance().
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('duties', $port,
	"llm_gateway.worker_interval = '100ms'\nllm_gateway.sweep_interval = '1s'\n");

sub wait_for
{
	my ($sql, $expected, $what) = @_;
	ok($node->poll_query_until('postgres', $sql, $expected), $what)
	  or diag($node->safe_psql('postgres', $sql));
}

sub call
{
	my ($n) = @_;
	return "SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'duty call $n', '{\"agent\": \"a$n\"}');";
}

wait_for(q{SELECT count(*) >= 4 FROM pg_inherits WHERE inhparent = 'llm_gateway.usage'::regclass},
	't', 'the worker makes the ledger\'s monthly partitions ahead');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM llm_gateway.usage_default}), '0',
	'rows land in the monthly partitions, not the default one');

# A call whose transaction stays open while later ones commit (its row
# written by the caller, so it is in the spend queue until then).
my $bg = $node->background_psql('postgres');
$bg->query_safe('SET llm_gateway.transactional_ledger_rows = 64');
$bg->query_safe('BEGIN');
$bg->query_safe(call(1));
my $open_id = $node->safe_psql('postgres', q{
	SELECT max(entry_id) FROM (SELECT last_value AS entry_id FROM llm_gateway.usage_id_seq) s});
$node->safe_psql('postgres', call($_)) for 2 .. 6;
wait_for(q{SELECT sum(requests) FROM llm_gateway.usage_hourly WHERE tenant = 'acme'}, '5',
	'the worker rolls up the committed calls on its own');
is($node->safe_psql('postgres', qq{
	SELECT (SELECT rolled_up_to FROM llm_gateway.rollup_state) > $open_id,
	       EXISTS (SELECT 1 FROM llm_gateway.rollup_holes WHERE id = $open_id)}), 't|t',
	'past the call still open, which it keeps as a hole');
$bg->query_safe('COMMIT');
$bg->quit;
wait_for(q{SELECT sum(requests) FROM llm_gateway.usage_hourly WHERE tenant = 'acme'}, '6',
	'once it commits, that call is rolled up too');
is($node->safe_psql('postgres', 'SELECT count(*) FROM llm_gateway.rollup_holes'), '0',
	'and the hole is gone');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  (SELECT date_trunc('hour', created_at), agent, count(*), sum(input_tokens), sum(cost_usd)
	     FROM llm_gateway.usage GROUP BY 1, 2
	   EXCEPT
	   SELECT hour, agent, attempts, input_tokens, cost_usd FROM llm_gateway.usage_hourly)
	  UNION ALL
	  (SELECT hour, agent, attempts, input_tokens, cost_usd FROM llm_gateway.usage_hourly
	   EXCEPT
	   SELECT date_trunc('hour', created_at), agent, count(*), sum(input_tokens), sum(cost_usd)
	     FROM llm_gateway.usage GROUP BY 1, 2)) d}),
	'0', 'the rollups equal the ledger, row for row');

# A budget that began three days ago: its three ended periods are closed.
$node->safe_psql('postgres', q{
	SELECT llm_budget_set('acme', 100, 'requests', 'daily');
	UPDATE llm_gateway.budgets SET created_at = now() - interval '3 days' WHERE tenant = 'acme';
});
wait_for(q{SELECT count(*) FROM llm_gateway.budget_periods WHERE tenant = 'acme'}, '3',
	'the worker closes the three periods that ended, once each');

# Thresholds reached without a call, and a counter that drifted.
$node->safe_psql('postgres', q{
	SELECT llm_budget_set('acme', 7, 'requests', 'daily', '{"at_limit": "allow"}')});
wait_for(q{SELECT string_agg(threshold::text, ' ' ORDER BY threshold) FROM llm_gateway.alerts
            WHERE tenant = 'acme'}, '0.8',
	'the sweep fires the threshold the lower amount reached');
$node->safe_psql('postgres', q{
	INSERT INTO llm_gateway.usage (request_id, tenant, model, status)
	VALUES ('00000000-0000-4000-8000-000000000002', 'acme', 'openai/gpt-4o-mini', 'ok')});
wait_for(q{SELECT b ->> 'used' FROM jsonb_array_elements(llm_budget_status('acme') -> 'budgets') b},
	'7', 'the counter is reconciled with a row it never saw');
wait_for(q{SELECT string_agg(threshold::text, ' ' ORDER BY threshold) FROM llm_gateway.alerts
            WHERE tenant = 'acme'}, '0.8 0.9 1',
	'and the thresholds that row crossed fire too');

# A pass holds nothing a call needs: with llm_maintenance()'s transaction
# left open (rollup, periods, sweep done), calls go through.
my $pass = $node->background_psql('postgres');
$pass->query_safe('BEGIN');
$pass->query_safe('SELECT llm_maintenance()');
is($node->safe_psql('postgres', q{
	SET statement_timeout = '5s';
	SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'during a pass', '{"agent": "a3"}')}),
	'mock answer: during a pass', 'a call completes while a pass is open');
$pass->query_safe('COMMIT');
$pass->quit;

# The summary sees what the worker rolled up, and the rows since.
is($node->safe_psql('postgres', q{
	SELECT (s -> 'totals' ->> 'requests') || ' ' || (s -> 'by_agent' -> 'a3' ->> 'requests')
	  FROM llm_usage_summary('acme', 'today') s}), '8 2',
	'the summary counts every call of the day, per agent too');

# Cache rows expire without a call.
$node->safe_psql('postgres', q{
	SET llm_gateway.cache = on;
	SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'cache me', '{"cache_ttl_s": 1}')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM llm_gateway.cache'), '1',
	'an answer is cached for a second');
wait_for('SELECT count(*) FROM llm_gateway.cache', '0',
	'the worker expires it on its own');

# Retention: an old monthly partition and an old row in the default one go
# once the setting says so; the rollups stay.
$node->safe_psql('postgres', q{
	CREATE TABLE llm_gateway.usage_2025_01
	       (LIKE llm_gateway.usage INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
	SELECT llm_gateway.index_partition('llm_gateway.usage_2025_01');
	ALTER TABLE llm_gateway.usage ATTACH PARTITION llm_gateway.usage_2025_01
	      FOR VALUES FROM ('2025-01-01 00:00+00') TO ('2025-02-01 00:00+00');
	INSERT INTO llm_gateway.usage (created_at, request_id, tenant, model, status)
	VALUES ('2025-01-15 12:00+00', '00000000-0000-4000-8000-000000000003', 'acme',
	        'openai/gpt-4o-mini', 'ok'),
	       ('2024-06-15 12:00+00', '00000000-0000-4000-8000-000000000004', 'acme',
	        'openai/gpt-4o-mini', 'ok');
});
wait_for(q{SELECT sum(requests) FROM llm_gateway.usage_hourly WHERE tenant = 'acme'
            AND hour < '2025-02-01'}, '2', 'old rows are rolled up like any other');
$node->append_conf('postgresql.conf', "llm_gateway.ledger_retention_months = 3\n");
$node->reload;
wait_for(q{SELECT to_regclass('llm_gateway.usage_2025_01') IS NULL
             AND NOT EXISTS (SELECT 1 FROM llm_gateway.usage WHERE created_at < '2025-02-01')},
	't', 'the worker drops the partition and the rows past retention');
is($node->safe_psql('postgres', q{
	SELECT sum(requests) FROM llm_gateway.usage_hourly WHERE tenant = 'acme' AND hour < '2025-02-01'}),
	'2', 'and keeps their rollups');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_inherits WHERE inhparent = 'llm_gateway.usage'::regclass
	   AND inhrelid::regclass::text LIKE '%usage_20%'}), '4',
	'the partitions kept: last month, this one and two ahead');

$node->stop;
done_testing();

# pg_dump keeps the configuration and the ledger; the restore does not
# collide with the builtin registry rows, and the sealed keys still work
# under the same master key.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('dump', $port);

$node->safe_psql('postgres', q{
	SELECT llm_model_set('openai/gpt-4o-mini', 'openai', '{"input_usd_per_mtok": 0.2}');
	SELECT llm_model_set('acme/custom', 'openai', '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 1, "output_usd_per_mtok": 2}');
	SELECT llm_plan_set('pro', '{"rpm": 600, "budgets": [{"amount": 100}]}');
	SELECT llm_tenant_set('globex', '{"members": ["public"], "plan": "pro", "currency": "BRL"}');
	SELECT llm_exchange_rate_set('BRL', 5.4);
	SELECT llm_agent_set('globex', 'lobo', '{"name": "Lobo", "daily_limit": 5}');
	SELECT llm_budget_set('globex', 1, 'requests', 'monthly',
		'{"at_limit": "allow", "thresholds": [0.5]}');
	SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'before the dump');
	SELECT llm_chat('globex', 'acme/custom', 'before the dump too');
	SELECT llm_maintenance();
});

my $dump = $node->basedir . '/dump.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ],
	'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
my ($rc, $out, $err) = $node->psql('restored', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $dump ]);
is($rc, 0, 'the dump restores without errors') or diag($err);

my $q = q{
	SELECT (SELECT count(*) FROM llm_gateway.providers) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.models) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.models WHERE NOT builtin) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.tenants) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.tenant_members) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.usage) || ' ' ||
	       (SELECT sum(cost_usd) FROM llm_gateway.usage) || ' ' ||
	       (SELECT sum(cost_local) FROM llm_gateway.usage) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.plans) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.agents) || ' ' ||
	       (SELECT string_agg(unit || period, ',' ORDER BY id) FROM llm_gateway.budgets) || ' ' ||
	       (SELECT count(*) FROM llm_gateway.exchange_rates) || ' ' ||
	       (SELECT string_agg(type, ',' ORDER BY id) FROM llm_gateway.alerts) || ' ' ||
	       (SELECT count(*) FROM pg_inherits WHERE inhparent = 'llm_gateway.usage'::regclass) || ' ' ||
	       (SELECT sum(requests) || '/' || sum(cost_usd) FROM llm_gateway.usage_hourly) || ' ' ||
	       (SELECT rolled_up_to FROM llm_gateway.rollup_state)};
is($node->safe_psql('restored', $q), $node->safe_psql('postgres', $q),
	'configuration, registry, ledger and its partitions, rollups, plans, agents, budgets, rates and alerts are identical after the restore');
like($node->safe_psql('postgres', $q),
	qr/ 1 1 usdmonthly,usddaily,requestsmonthly 1 budget_warning,budget_exceeded 5 2\/0\.0000\d+ 2$/,
	'the dumped database had every kind of row: ledger partitions and rollups too');
is($node->safe_psql('restored',
	q{SELECT input_usd_per_mtok FROM llm_gateway.deployments WHERE model = 'openai/gpt-4o-mini'}),
	'0.2', 'the price correction survives and still shadows the builtin row');
is($node->safe_psql('restored', q{SELECT llm_chat('globex', 'acme/custom', 'after the restore')}),
	'mock answer: after the restore', 'the restored sealed key still opens');
my $next = $node->safe_psql('restored', q{SELECT max(id) FROM llm_gateway.usage});
is($next, '3', 'the ledger id sequence continues where it was');

$node->stop;
done_testing();

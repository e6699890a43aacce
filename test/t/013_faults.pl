# Faults: a provider that refuses connections, a name that resolves to
# nothing, connections closed before or in the middle of the response under
# concurrent load, and the server stopped with "immediate" (no shutdown at
# all) in the middle of load.  Each failure has its SQLSTATE and its ledger
# row; after the restart the budget and concurrency counters are rebuilt
# from the ledger and nothing stays reserved or in flight.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('faults', $port,
	    "max_connections = 40\n"
	  . "llm_gateway.max_retries = 0\n"
	  . "llm_gateway.allowed_http_hosts = 'no-such-host.invalid'\n");

# a loopback port nobody listens on
my $closed = do
{
	require IO::Socket::INET;
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)
	  or die "socket: $!";
	my $p = $s->sockport;
	close $s;
	$p;
};

$node->safe_psql('postgres', qq{
	SELECT llm_provider_set('refusing', 'openai',
		'{"base_url": "http://127.0.0.1:$closed/v1", "breaker_failures": 1000}');
	SELECT llm_provider_set('nowhere', 'openai',
		'{"base_url": "http://no-such-host.invalid/v1", "breaker_failures": 1000,
		  "connect_timeout_ms": 2000}');
	SELECT llm_provider_set('openai', NULL, '{"breaker_failures": 1000}');
	SELECT llm_model_set('f/' || p, p, '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "max_output_tokens": 100}')
	  FROM unnest(ARRAY['refusing', 'nowhere', 'openai']) p;
	CREATE TABLE outcomes (outcome text);
	CREATE FUNCTION outcome(model text, prompt text) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN
		PERFORM llm_chat('metered', model, prompt, '{"max_tokens": 20}');
		RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE;
	END \$\$;
	SELECT llm_tenant_set('metered', '{"members": ["public"], "max_concurrency": 8}');
	SELECT llm_budget_set('metered', 1000, 'usd', 'monthly');
});

sub sqlstate_of
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', "SELECT outcome($sql)");
}

sub ledger_of
{
	my ($provider) = @_;
	$node->safe_psql('postgres', 'SELECT llm_maintenance()');
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(status || ' ' || coalesce(error_code, '-'), ',' ORDER BY id)
		  FROM llm_gateway.usage WHERE provider = '$provider'});
}

# ---- connections refused, names that resolve to nothing ----
is(sqlstate_of("'f/refusing', 'x'"), 'LG026', 'a refused connection is LG026');
is(ledger_of('refusing'), 'error LG026', 'and leaves its ledger row');
my $t0 = time();
is(sqlstate_of("'f/nowhere', 'x'"), 'LG026', 'a host that does not resolve is LG026');
ok(time() - $t0 < 10, 'promptly');
is(ledger_of('nowhere'), 'error LG026', 'and leaves its ledger row');
like($node->safe_psql('postgres',
	"SELECT error FROM llm_gateway.usage WHERE provider = 'nowhere'"),
	qr/resolve/i, 'the row says the name did not resolve');

# ---- connections closed before or in the middle of the answer, under load ----
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=30',
	0,
	[qr{processed: 240/240}],
	[qr{^$}],
	'8 sessions, 30 calls each, a third closed mid-response, a third before it',
	{
		'001_close' => q{\set r random(1, 1000000000)
\set kind random(0, 2)
INSERT INTO outcomes SELECT outcome('f/openai', 'close ' || :r || ' ' ||
	CASE :kind WHEN 0 THEN '[[mock:close_mid]]' WHEN 1 THEN '[[mock:close]]' ELSE '' END);},
	});
my %outcome = map { split /\|/ }
  split /\n/, $node->safe_psql('postgres', 'SELECT outcome, count(*) FROM outcomes GROUP BY 1');
note(join ', ', map { "$_: $outcome{$_}" } sort keys %outcome);
is(join(' ', sort keys %outcome), 'LG026 ok', 'every call either answered or failed with LG026');
is($outcome{ok} + $outcome{LG026}, 240, 'all 240 calls came back');
$node->safe_psql('postgres', 'SELECT llm_maintenance()');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE status = 'ok') || ' ' || count(*) FILTER (WHERE error_code = 'LG026')
	  FROM llm_gateway.usage WHERE provider = 'openai' AND tenant = 'metered'}),
	"$outcome{ok} $outcome{LG026}", 'one ledger row per call, with its outcome');
is($node->safe_psql('postgres',
	"SELECT in_flight FROM llm_providers_status() WHERE provider = 'openai'"),
	'0', 'nothing is left in flight');
is(sqlstate_of("'f/openai', 'after the storm'"), 'ok',
	'the connection pool recovers: the next call is answered');

# ---- an immediate stop in the middle of load ----
my $script = $node->basedir . '/crash.sql';
open my $fh, '>', $script or die $!;
print $fh q{\set r random(1, 1000000000)
SELECT outcome('f/openai', 'crash ' || :r || ' [[mock:slow_ms=150]]');
};
close $fh;
my ($out, $err) = ('', '');
my $load = IPC::Run::start(
	[ 'pgbench', '--no-vacuum', '--client=12', '--jobs=2', '--time=20',
	  '--file', $script, '--host', $node->host, '--port', $node->port, 'postgres' ],
	'>', \$out, '2>', \$err);
ok($node->poll_query_until('postgres',
	"SELECT in_flight >= 4 FROM llm_providers_status() WHERE provider = 'openai'"),
	'calls are in flight');
sleep 1;
$node->stop('immediate');
$load->finish;
$node->start;

my $status = $node->safe_psql('postgres', q{
	SELECT (b ->> 'reserved') || ' ' ||
	       ((b ->> 'used')::numeric = (SELECT coalesce(sum(cost_usd), 0)
	                                     FROM llm_gateway.usage WHERE tenant = 'metered'))
	  FROM jsonb_array_elements(llm_budget_status('metered') -> 'budgets') b});
is($status, '0 true',
	'after the crash: nothing reserved, the budget counter rebuilt equal to the ledger');
is($node->safe_psql('postgres',
	"SELECT in_flight FROM llm_providers_status() WHERE provider = 'openai'"),
	'0', 'no provider slot is stuck in flight');
is($node->safe_psql('postgres', "SELECT llm_maintenance() -> 'spend' ->> 'pending'"),
	'0', 'no spend is pending');
# the tenant's max_concurrency (8) is whole again: 8 calls at once all pass
$node->safe_psql('postgres', 'TRUNCATE outcomes');
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=1',
	0,
	[qr{processed: 8/8}],
	[qr{^$}],
	'8 concurrent calls after the restart',
	{
		'002_after' => q{\set r random(1, 1000000000)
INSERT INTO outcomes SELECT outcome('f/openai', 'after ' || :r || ' [[mock:slow_ms=300]]');},
	});
is($node->safe_psql('postgres', 'SELECT string_agg(DISTINCT outcome, \',\') FROM outcomes'),
	'ok', 'all answered: no concurrency slot of the tenant was left taken');

done_testing();

# A small hard budget under 32 concurrent sessions: admission is an atomic
# check-and-reserve, so the recorded spend never passes the limit by more
# than the estimates of the calls in flight; every reservation is settled,
# cancelled calls included; each threshold alert fires exactly once (rows
# and NOTIFYs); and after a restart the counters are rebuilt from the ledger.
use strict;
use warnings;

use JSON::PP qw(decode_json);
use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('budgets', $port, "max_connections = 60\n");

my $limit = 0.004;
# A call's worst case: its prompt estimate (about 14 tokens at 1 USD per
# million) plus max_tokens 20 at 2 USD per million.  The budget status
# reports the exact figure; this bound is only used to size the check.
my $max_estimate = 0.00006;

$node->safe_psql('postgres', qq{
	SELECT llm_model_set('load/model', 'openai', '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "max_output_tokens": 100}');
	SELECT llm_tenant_set('load', '{"members": ["public"]}');
	SELECT llm_budget_set('load', $limit, 'usd', 'daily',
		'{"thresholds": [0.25, 0.5, 0.75, 0.9]}');
	CREATE TABLE outcomes (outcome text);
	-- one call: its model, or why it did not happen; one in ten is slow
	-- and cut short by statement_timeout while in flight
	CREATE FUNCTION load_call(c int, r int, slow int) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN
		RETURN llm_complete('load', 'load/model',
			jsonb_build_array(jsonb_build_object('role', 'user', 'content',
				format('load %s %s [[mock:slow_ms=%s]]', c, r,
				       CASE WHEN slow = 0 THEN 5000 ELSE 20 END))),
			'{"max_tokens": 20}') ->> 'model';
	EXCEPTION
		WHEN SQLSTATE 'LG040' THEN RETURN 'refused';
		WHEN query_canceled THEN RETURN 'cancelled';
	END \$\$;
});

# A LISTEN client, there before the first alert.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN llm_gateway_alerts');

$node->pgbench(
	'--no-vacuum --client=32 --jobs=4 --transactions=12',
	0,
	[qr{processed: 384/384}],
	[qr{^$}],
	'32 sessions, 12 calls each, on one tenant',
	{
		'001_load' => q{\set r random(1, 1000000000)
\set slow random(0, 9)
SET statement_timeout = 1000;
INSERT INTO outcomes SELECT load_call(:client_id, :r, :slow);},
	});

my %outcome = map { split /\|/ }
  split /\n/, $node->safe_psql('postgres',
	'SELECT outcome, count(*) FROM outcomes GROUP BY 1');
note(join ', ', map { "$_: $outcome{$_}" } sort keys %outcome);
ok($outcome{'load/model'} > 0, 'calls were answered');
ok($outcome{refused} > 0, 'calls were refused at the limit');
ok($outcome{cancelled} > 0, 'calls were cancelled in flight');

# Every ledger row written (the cancelled ones by the worker).
$node->safe_psql('postgres', 'SELECT llm_maintenance()');

my $status_sql = q{
	SELECT (b ->> 'used') || '|' || (b ->> 'reserved') || '|' ||
	       ((b ->> 'used')::numeric = (SELECT coalesce(sum(cost_usd), 0)
	                                     FROM llm_gateway.usage WHERE tenant = 'load'))
	  FROM jsonb_array_elements(llm_budget_status('load') -> 'budgets') b};
my ($used, $reserved, $matches) = split /\|/, $node->safe_psql('postgres', $status_sql);
is($reserved, '0', 'no reservation is left behind, cancelled calls included');
is($matches, 'true', 'the counter in shared memory equals the ledger to the pico-dollar');

my $spent = $node->safe_psql('postgres',
	"SELECT sum(cost_usd) FROM llm_gateway.usage WHERE tenant = 'load'");
note("limit $limit USD, spent $spent USD");
ok($spent <= $limit + 32 * $max_estimate,
	'spend stays within the limit plus the estimates of the calls in flight');
ok($spent <= $limit, 'and, estimates being worst cases, within the limit itself');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM llm_gateway.usage WHERE tenant = 'load' AND status = 'cancelled'}),
	$outcome{cancelled}, 'every cancelled call has its ledger row');

# Each threshold once: rows and notifications.
my $fired = $node->safe_psql('postgres',
	q{SELECT string_agg(threshold || 'x' || n, ' ' ORDER BY threshold)
	    FROM (SELECT threshold, count(*) n FROM llm_gateway.alerts
	           WHERE tenant = 'load' AND threshold < 1 GROUP BY 1) s});
is($fired, '0.25x1 0.5x1 0.75x1 0.9x1', 'each threshold fired exactly once');

my (%notified, @payloads);
my $out = '';
for (1 .. 50)
{
	$out .= $listener->query_safe('SELECT 1');
	@payloads = map { decode_json($_) }
	  $out =~ /Asynchronous notification "llm_gateway_alerts" with payload "(.*?)" received/g;
	%notified = ();
	$notified{ $_->{threshold} }++
	  for grep { $_->{tenant} eq 'load' && $_->{threshold} < 1 } @payloads;
	last if keys %notified >= 4;
	sleep 0.1;
}
is(join(' ', map { "${_}x$notified{$_}" } sort keys %notified),
	'0.25x1 0.5x1 0.75x1 0.9x1', 'the LISTEN client heard each threshold once');
is(join(',', sort keys %{ $payloads[0] }),
	'alert_id,limit,message,percent_used,tenant,threshold,type,unit,used',
	'the payload has the documented fields');
$listener->quit;

# After a restart the counter is rebuilt from the ledger, and the fired
# thresholds are not fired again.
$node->restart;
($used, $reserved, $matches) = split /\|/, $node->safe_psql('postgres', $status_sql);
is("$reserved $matches", '0 true', 'after a restart the counter is rebuilt from the ledger');
$node->safe_psql('postgres', qq{
	SELECT llm_budget_set('load', $limit, 'usd', 'daily',
		'{"at_limit": "allow", "thresholds": [0.25, 0.5, 0.75, 0.9]}');
	SELECT load_call(0, 0, 1), load_call(0, 1, 1), load_call(0, 2, 1);
	SELECT llm_maintenance();
});
is($node->safe_psql('postgres',
	q{SELECT string_agg(threshold || 'x' || n, ' ' ORDER BY threshold)
	    FROM (SELECT threshold, count(*) n FROM llm_gateway.alerts
	           WHERE tenant = 'load' GROUP BY 1) s}),
	'0.25x1 0.5x1 0.75x1 0.9x1 1x1',
	'past the limit after the restart: "exceeded" fires, the old thresholds do not fire again');

$node->stop;
done_testing();

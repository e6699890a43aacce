# Spend is never lost: every call that may have cost money ends up in the
# ledger exactly once, whatever happens to the caller, and the worker
# writes what callers could not.  These tests wait for the worker itself
# (poll_query_until), never for llm_maintenance(), except where it says so.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('spend', $port);

sub rows_for
{
	my ($agent) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) || ' ' || coalesce(string_agg(status || '/' || written_by, ',' ORDER BY id), '')
		   FROM llm_gateway.usage WHERE agent = '$agent'");
}

sub wait_rows
{
	my ($agent, $expected, $what) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT count(*) || ' ' || coalesce(string_agg(status || '/' || written_by, ',' ORDER BY id), '')
		   FROM llm_gateway.usage WHERE agent = '$agent'", $expected);
	ok($ok, $what) or diag('ledger has: ' . rows_for($agent));
}

sub call_sql
{
	my ($agent, $prompt) = @_;
	$prompt //= 'hello';
	return "SELECT llm_chat('acme', 'openai/gpt-4o-mini', '$prompt', '{\"agent\": \"$agent\"}');";
}

# The worker is there, under its own backend_type.
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'llm_gateway worker'"),
	'1', 'the worker shows in pg_stat_activity as "llm_gateway worker"');

# ROLLBACK after the call.
$node->safe_psql('postgres', 'BEGIN; ' . call_sql('rollback') . ' ROLLBACK;');
wait_rows('rollback', '1 ok/worker', 'a rolled-back call leaves exactly one row, written by the worker');

# A committed call: one row, by the worker (the default), or by the caller
# when the caller writes its rows.
$node->safe_psql('postgres', call_sql('commit'));
wait_rows('commit', '1 ok/worker', 'a committed call leaves exactly one row, written by the worker');
$node->safe_psql('postgres',
	'SET llm_gateway.transactional_ledger_rows = 64; ' . call_sql('commit-caller'));
$node->safe_psql('postgres', 'SELECT llm_maintenance()');
is(rows_for('commit-caller'), '1 ok/caller',
	'with transactional_ledger_rows, exactly one row, the caller\'s own');

# A slow call (the mock answers after 60 s), in flight in a background session.
sub start_slow_call
{
	my ($agent) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/started/, "\\echo started\n" . call_sql($agent, 'slow [[mock:slow_ms=60000]]') . "\n");
	$node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'the call never started waiting';
	return ($bg, $pid);
}

my ($bg, $pid) = start_slow_call('cancelled');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
wait_rows('cancelled', '1 cancelled/worker', 'a call cancelled in flight leaves a "cancelled" row');
is($node->safe_psql('postgres',
	"SELECT error || ' ' || usage_estimated || ' ' || (cost_usd > 0) FROM llm_gateway.usage WHERE agent = 'cancelled'"),
	'canceling statement due to user request true true',
	'with the reason and the estimated cost of the prompt');
$bg->quit;

($bg, $pid) = start_slow_call('terminated-in-flight');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
wait_rows('terminated-in-flight', '1 cancelled/worker',
	'a backend terminated in flight leaves a "cancelled" row');
eval { $bg->quit };

# pg_terminate_backend after the provider answered, transaction still open.
$bg = $node->background_psql('postgres', on_error_stop => 0);
$pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_safe('BEGIN');
$bg->query_safe(call_sql('terminated-after'));
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
wait_rows('terminated-after', '1 ok/worker',
	'a backend terminated after the answer, before its commit, leaves its row');
eval { $bg->quit };

# The worker is killed; what waits meanwhile is written when it is back.
my $worker = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'llm_gateway worker'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($worker)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $worker")
  or die 'the worker did not exit';
$node->safe_psql('postgres', 'BEGIN; ' . call_sql('while-worker-down') . ' ROLLBACK;');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'llm_gateway worker' AND pid <> $worker"),
	'the postmaster restarts the killed worker');
wait_rows('while-worker-down', '1 ok/worker',
	'and the new worker writes what waited while it was down');

# 8 concurrent sessions, committed and rolled-back calls mixed: once with
# the worker writing every row, once with callers writing theirs.
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=25',
	0,
	[qr{processed: 200/200}],
	[qr{^$}],
	'200 calls from 8 concurrent sessions, the worker writing',
	{
		'011_worker_commit@3' => q{SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'bench', '{"agent": "worker-commit"}');},
		'012_worker_rollback@1' => q{BEGIN;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'bench', '{"agent": "worker-rollback"}');
ROLLBACK;},
	});
$node->safe_psql('postgres', 'SELECT llm_maintenance()');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT request_id) || ' ' || bool_and(written_by = 'worker')::text
	  FROM llm_gateway.usage WHERE agent LIKE 'worker-%'}),
	'200 200 true', 'every call has one row, none two, all the worker\'s');

$node->safe_psql('postgres', 'ALTER DATABASE postgres SET llm_gateway.transactional_ledger_rows = 64');
$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=25',
	0,
	[qr{processed: 200/200}],
	[qr{^$}],
	'200 calls from 8 concurrent sessions',
	{
		'001_commit@3' => q{SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'bench', '{"agent": "bench-commit"}');},
		'002_rollback@1' => q{BEGIN;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'bench', '{"agent": "bench-rollback"}');
ROLLBACK;},
	});
$node->safe_psql('postgres', 'SELECT llm_maintenance()');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM llm_gateway.usage WHERE agent LIKE 'bench-%'"),
	'200', 'every one of the 200 calls has a row');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT request_id FROM llm_gateway.usage GROUP BY request_id HAVING count(*) > 1) d"),
	'0', 'and no call has two');
is($node->safe_psql('postgres',
	"SELECT bool_and(written_by = CASE agent WHEN 'bench-commit' THEN 'caller' ELSE 'worker' END)
	   FROM llm_gateway.usage WHERE agent LIKE 'bench-%'"),
	't', 'committed rows are the callers\', rolled-back ones the worker\'s');
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET llm_gateway.transactional_ledger_rows');

# A fast shutdown while a transaction holds an answered call: the backend
# aborts, and the worker, shutting down too, writes the row before it exits.
$bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe('BEGIN');
$bg->query_safe(call_sql('at-shutdown'));
$node->stop('fast');
eval { $bg->quit };
$node->start;
is(rows_for('at-shutdown'), '1 ok/worker',
	'a call whose transaction was open at a fast shutdown is in the ledger after it');

# A pass that fails is logged and rolled back; the worker goes on, and the
# row is written by a later pass.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	"ALTER TABLE llm_gateway.usage ADD CONSTRAINT refuse_worker CHECK (written_by <> 'worker') NOT VALID");
$node->safe_psql('postgres', 'BEGIN; ' . call_sql('failing-pass') . ' ROLLBACK;');
ok($node->wait_for_log(qr/violates check constraint "refuse_worker"/, $log_offset),
	'a failing pass is logged');
is(rows_for('failing-pass'), '0 ', 'and writes nothing');
$node->safe_psql('postgres', 'ALTER TABLE llm_gateway.usage DROP CONSTRAINT refuse_worker');
wait_rows('failing-pass', '1 ok/worker', 'the worker survives it and a later pass writes the row');

# DDL never waits for the worker, and the worker idles without the extension.
$node->safe_psql('postgres', 'BEGIN; ' . call_sql('before-drop') . ' ROLLBACK;');
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'DROP EXTENSION llm_gateway');
pass('DROP EXTENSION goes through while the worker runs');
$node->safe_psql('postgres', 'SELECT pg_sleep(1.5)');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'llm_gateway worker'"),
	'1', 'the worker keeps running where the extension is not installed');
unlike(slurp_file($node->logfile, $log_offset), qr/ERROR|FATAL/, 'and logs no error');

$node->stop;
done_testing();

# A call waiting on the provider honours query cancel and
# pg_terminate_backend promptly, shows a wait event, and the server survives.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('interrupts', $port);
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# Start a call the mock answers only after 60 s; return its backend pid once
# it is waiting inside the transfer.
sub start_slow_call
{
	my ($tag) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/started/, qq{\\echo started
SELECT llm_chat('acme', 'openai/gpt-4o-mini', '$tag [[mock:slow_ms=60000]]');
});
	$node->poll_query_until('postgres', qq{
		SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid})
	  or die "the call never started waiting";
	return ($bg, $pid);
}

# pg_cancel_backend
my ($bg, $pid) = start_slow_call('cancel me');
pass('a call in flight is reported with wait event type Extension');
my $t0 = time();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$node->poll_query_until('postgres', qq{
	SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $pid})
  or die "the call did not stop";
my $cancel_s = time() - $t0;
note(sprintf('cancel took %.0f ms', $cancel_s * 1000));
ok($cancel_s < 5, 'cancel stops the call without waiting for the provider');
is($bg->query('SELECT 1'), '1', 'the session is usable after the cancel');
like($bg->{stderr}, qr/canceling statement due to user request/, 'the caller sees the cancel');
is($bg->query(q{SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'after cancel')}),
	'mock answer: after cancel', 'and its next call succeeds');
$bg->quit;

# pg_terminate_backend
($bg, $pid) = start_slow_call('terminate me');
$t0 = time();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres', qq{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid})
  or die "the backend did not exit";
my $term_s = time() - $t0;
note(sprintf('terminate took %.0f ms', $term_s * 1000));
ok($term_s < 5, 'pg_terminate_backend ends the backend without waiting for the provider');
eval { $bg->quit };

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started,
	'the server did not restart');
is($node->safe_psql('postgres', q{SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'still serving')}),
	'mock answer: still serving', 'and goes on serving calls');
ok(!$node->log_contains('server process .* was terminated by signal'), 'no backend crashed');

$node->stop;
done_testing();

# One kept-alive connection per backend: calls reuse it, a new session opens
# its own, and a connection the provider broke is replaced transparently.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('reuse', $port);

mock_reset($port);
my $answered = $node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE llm_chat('acme', 'openai/gpt-4o-mini', 'call ' || i)
	                        = 'mock answer: call ' || i)
	  FROM generate_series(1, 50) AS i});
is($answered, '50', '50 calls in one session are all answered');

my $stats = mock_stats($port);
is($stats->{requests}, 50, 'the provider saw 50 requests');
is($stats->{connections}, 1, 'all 50 travelled over one kept-alive connection');

$node->safe_psql('postgres', q{SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'another session')});
$stats = mock_stats($port);
is($stats->{connections}, 2, 'a new session opens one more connection');

my $ids = $node->safe_psql('postgres', q{
	SELECT count(DISTINCT llm_chat('acme', 'openai/gpt-4o-mini', '[[mock:conn]]')::jsonb ->> 'connection_id')
	  FROM generate_series(1, 5)});
is($ids, '1', 'the provider reports one connection id for five calls');

my ($rc, $out, $err) = $node->psql('postgres', q{
	SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'x [[mock:close]]');
	SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'after the break');
	SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'and again');},
	on_error_stop => 0);
like($err, qr/could not exchange data with provider "openai"/,
	'a connection closed by the provider is reported');
is($out, "mock answer: after the break\nmock answer: and again",
	'the next calls in the same session reconnect and succeed');

$node->stop;
done_testing();

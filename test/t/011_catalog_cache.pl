# The catalog cache across sessions: a backend that keeps what the catalog
# said sees another session's change at its next call once that change
# commits, and not before.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $node = gateway_node('catalog', $port, '');
$node->safe_psql('postgres', q{
	SELECT llm_agent_set('acme', 'bot', '{}');
	SELECT llm_model_set('cc/model', 'openai',
	       '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 1, "output_usd_per_mtok": 0}');
});

my $a = $node->background_psql('postgres', on_error_stop => 0);
my $call = q{SELECT llm_complete('acme', 'cc/model',
	'[{"role": "user", "content": "p [[mock:usage=1000000,0]]"}]', '{"agent": "bot"}')
	-> 'usage' ->> 'cost_usd';};
is($a->query($call), '1', 'a session resolves and caches its calls');

# Another session deactivates the agent: refused at the next call.
$node->safe_psql('postgres', q{SELECT llm_agent_set('acme', 'bot', '{"active": false}')});
like(($a->query($call))[0] // '', qr/^$/, 'the next call of the first session answers nothing');
like($a->{stderr}, qr/agent "bot" of tenant "acme" is not active/, 'is refused: it saw the change');
$node->safe_psql('postgres', q{SELECT llm_agent_set('acme', 'bot', '{"active": true}')});
is($a->query($call), '1', 'and allowed again once the agent is back');

# A change in a transaction still open is not seen; once committed, it is.
my $b = $node->background_psql('postgres');
$b->query_safe('BEGIN');
$b->query_safe(q{SELECT llm_model_set('cc/model', 'openai', '{"input_usd_per_mtok": 3}')});
is($a->query($call), '1', 'an uncommitted price change is not seen');
$b->query_safe('COMMIT');
is($a->query($call), '3', 'the committed one is, at the next call');

# A rolled-back change leaves the cache as it was.
$b->query_safe('BEGIN');
$b->query_safe(q{SELECT llm_model_set('cc/model', 'openai', '{"input_usd_per_mtok": 5}')});
$b->query_safe('ROLLBACK');
is($a->query($call), '3', 'a rolled-back change is never seen');
$b->quit;
$a->quit;

$node->stop;
done_testing();

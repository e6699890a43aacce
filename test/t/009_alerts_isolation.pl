# What the worker does on its own, and what tenants may not do to each
# other: webhooks delivered and retried after a failure, provider alerts
# when a breaker opens and closes, exchange rates refreshed from a URL
# (and the last known rate when it fails), max_concurrency exact across
# sessions, and a member of tenant A neither spending from nor reading B.
use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP qw(decode_json encode_json);
use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $port = start_mock();
my $base = "http://127.0.0.1:$port";
my $node = gateway_node('alerts', $port,
	    "max_connections = 40\n"
	  . "llm_gateway.webhook_retry = '200ms'\n"
	  . "llm_gateway.worker_interval = '100ms'\n"
	  . "llm_gateway.alert_webhook = '$base/_mock/hook/ops'\n"
	  . "llm_gateway.exchange_rate_url = '$base/_mock/rates'\n"
	  . "llm_gateway.exchange_rate_interval = '1s'\n");
my $http = HTTP::Tiny->new(timeout => 10);

sub hook
{
	my ($name) = @_;
	my $r = $http->get("$base/_mock/hooks/$name");
	die "hooks: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

sub wait_for
{
	my ($sql, $expected, $what) = @_;
	ok($node->poll_query_until('postgres', $sql, $expected), $what)
	  or diag($node->safe_psql('postgres', $sql));
}

$node->safe_psql('postgres', q{
	SELECT llm_model_set('alerts/model', 'openai', '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "max_output_tokens": 100}');
});

# ---- a budget's webhook: the first delivery fails, the retry succeeds ----
$node->safe_psql('postgres', qq{
	SELECT llm_tenant_set('hooked', '{"members": ["public"]}');
	SELECT llm_budget_set('hooked', 1, 'requests', 'daily', jsonb_build_object(
		'at_limit', 'allow', 'thresholds', '[1]'::jsonb,
		'webhook', '$base/_mock/hook/budget?fail=1'));
	SELECT llm_chat('hooked', 'alerts/model', 'one request');
});
wait_for(q{SELECT delivery_state || ' ' || delivery_attempts FROM llm_gateway.alerts
            WHERE tenant = 'hooked'}, 'delivered 2',
	'the worker delivers the webhook, retrying after a failure');
my $h = hook('budget');
is(join(' ', map { $_->{status} } @{ $h->{attempts} }), '500 200',
	'the receiver saw a failed attempt, then a successful one');
my $alert_id = $node->safe_psql('postgres',
	q{SELECT id FROM llm_gateway.alerts WHERE tenant = 'hooked'});
is($h->{delivered}[0]{alert_id}, $alert_id, 'the delivered payload names the alert');
is($h->{attempts}[1]{headers}{'x-llm-gateway-alert'}, $alert_id,
	'and so does the X-LLM-Gateway-Alert header');
is($h->{delivered}[0]{type}, 'daily_exceeded', 'with its type');
is($node->safe_psql('postgres', qq{SELECT string_agg(coalesce(http_status::text, '-'), ' ' ORDER BY attempt)
	FROM llm_gateway.alert_deliveries WHERE alert_id = $alert_id}),
	'500 200', 'both attempts are in the delivery log');

# ---- provider alerts: a breaker opens, then closes again ----
$node->safe_psql('postgres', qq{
	SELECT llm_provider_set('flaky', 'openai', jsonb_build_object(
		'base_url', '$base/mock:status=500/v1', 'api_key', '$MOCK_KEY',
		'breaker_failures', 2, 'breaker_cooldown_ms', 200, 'breaker_successes', 1));
	SELECT llm_model_set('flaky/model', 'flaky', '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}');
});
for (1 .. 2)
{
	$node->psql('postgres', q{SELECT llm_chat('acme', 'flaky/model', 'fail')});
}
$node->safe_psql('postgres', qq{
	SELECT llm_provider_set('flaky', NULL, jsonb_build_object('base_url', '$base/v1'));
	SELECT pg_sleep(0.3);
	SELECT llm_chat('acme', 'flaky/model', 'the probe');
});
wait_for(q{SELECT string_agg(type, ' ' ORDER BY id) FROM llm_gateway.alerts
            WHERE provider = 'flaky' AND type LIKE 'circuit%'},
	'circuit_open circuit_closed', 'a breaker that opens and closes raises two alerts');
wait_for(q{SELECT count(*) FROM llm_gateway.alerts
            WHERE provider = 'flaky' AND type LIKE 'circuit%' AND delivery_state = 'delivered'},
	'2', 'both go to llm_gateway.alert_webhook');
like(join(' ', map { $_->{message} } @{ hook('ops')->{delivered} }),
	qr/"flaky": circuit breaker opened .* "flaky": circuit breaker closed/,
	'the ops webhook got them in order');

# ---- exchange rates: refreshed from the URL, then the last known one ----
$node->safe_psql('postgres', q{SELECT llm_tenant_set('reais', '{"members": ["public"], "currency": "BRL"}')});
wait_for(q{SELECT rate || ' ' || source FROM llm_gateway.exchange_rates WHERE currency = 'BRL'},
	'5.25 api', 'the worker fetches the tenant currency\'s rate from the URL');
is($node->safe_psql('postgres', q{
	SELECT (r -> 'usage' ->> 'exchange_rate') || ' ' || (r -> 'usage' ->> 'rate_source') || ' ' ||
	       ((r -> 'usage' ->> 'cost')::numeric = round((r -> 'usage' ->> 'cost_usd')::numeric * 5.25, 12))
	  FROM llm_complete('reais', 'alerts/model', '[{"role": "user", "content": "em reais"}]') r}),
	'5.25 api true', 'a call is priced in BRL at the refreshed rate');
my $r = $http->post("$base/_mock/rates", { content => encode_json({ status => 503 }) });
die 'rates config' unless $r->{success};
wait_for(q{SELECT last_error FROM llm_gateway.exchange_rates WHERE currency = 'BRL'},
	'could not fetch exchange rates: HTTP 503', 'a failed refresh is recorded');
is($node->safe_psql('postgres', q{
	SELECT (r -> 'usage' ->> 'exchange_rate') || ' ' || (r -> 'usage' ->> 'rate_source')
	  FROM llm_complete('reais', 'alerts/model', '[{"role": "user", "content": "ainda em reais"}]') r}),
	'5.25 last_known', 'calls then use the last known rate, and say so');
$http->post("$base/_mock/rates", { content => encode_json({ rates => { BRL => 5.5 }, base => 'USD' }) });
wait_for(q{SELECT rate || ' ' || (last_error IS NULL) FROM llm_gateway.exchange_rates WHERE currency = 'BRL'},
	'5.5 true', 'the next refresh recovers');

# ---- max_concurrency holds across 16 sessions ----
$node->safe_psql('postgres', q{
	SELECT llm_tenant_set('narrow', '{"members": ["public"], "max_concurrency": 3}');
	CREATE TABLE outcomes (outcome text);
	CREATE FUNCTION narrow_call(c int) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		RETURN llm_chat('narrow', 'alerts/model', format('narrow %s [[mock:slow_ms=150]]', c));
	EXCEPTION WHEN SQLSTATE 'LG041' THEN RETURN 'refused';
	END $$;
});
mock_reset($port);
$node->pgbench(
	'--no-vacuum --client=16 --jobs=4 --transactions=5',
	0,
	[qr{processed: 80/80}],
	[qr{^$}],
	'16 sessions on a tenant with max_concurrency 3',
	{ '001_narrow' => q{INSERT INTO outcomes SELECT narrow_call(:client_id);} });
my $stats = mock_stats($port);
ok($stats->{max_in_flight} <= 3, "never more than 3 calls in flight ($stats->{max_in_flight})");
my $refused = $node->safe_psql('postgres', q{SELECT count(*) FROM outcomes WHERE outcome = 'refused'});
ok($refused > 0, "the others were refused with LG041 ($refused)");
is($node->safe_psql('postgres',
	q{SELECT b ->> 'reserved' FROM jsonb_array_elements(llm_budget_status('narrow') -> 'budgets') b}),
	'', 'a tenant without budgets has none to report');

# ---- isolation: a member of A neither spends from nor reads B ----
$node->safe_psql('postgres', q{
	CREATE ROLE member_a LOGIN;
	CREATE ROLE member_b LOGIN;
	SELECT llm_tenant_set('tenant_a', '{"members": ["member_a"]}');
	SELECT llm_tenant_set('tenant_b', '{"members": ["member_b"]}');
	SELECT llm_budget_set('tenant_b', 1, 'requests', 'daily', '{"at_limit": "allow"}');
});
$node->safe_psql('postgres', q{SELECT llm_chat('tenant_b', 'alerts/model', 'b spends')},
	extra_params => [ '-U', 'member_b' ]);
$node->safe_psql('postgres', 'SELECT llm_maintenance()');
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT llm_chat('tenant_b', 'alerts/model', 'a spends from b')},
	extra_params => [ '-U', 'member_a' ]);
like($err, qr/permission denied for tenant "tenant_b"/, 'a member of A cannot spend from B');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM llm_gateway.usage WHERE tenant = 'tenant_b') || ' ' ||
	       (SELECT count(*) FROM llm_gateway.alerts WHERE tenant = 'tenant_b') || ' ' ||
	       (SELECT count(*) FROM llm_gateway.budgets WHERE tenant = 'tenant_b') || ' ' ||
	       (SELECT count(*) FROM llm_gateway.tenants WHERE tenant = 'tenant_b')},
	extra_params => [ '-U', 'member_a' ]), '0 0 0 0', 'nor read B\'s usage, alerts, budgets or tenant row');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM llm_gateway.usage WHERE tenant = 'tenant_b') || ' ' ||
	       (SELECT count(*) FROM llm_gateway.alerts WHERE tenant = 'tenant_b')},
	extra_params => [ '-U', 'member_b' ]), '1 3', 'while B\'s member reads them');
($rc, $out, $err) = $node->psql('postgres', q{SELECT llm_budget_status('tenant_b')},
	extra_params => [ '-U', 'member_a' ]);
like($err, qr/permission denied for tenant "tenant_b"/, 'nor see B\'s budget status');
($rc, $out, $err) = $node->psql('postgres', q{SELECT api_key_enc FROM llm_gateway.providers},
	extra_params => [ '-U', 'member_a' ]);
like($err, qr/permission denied for table providers/, 'and provider keys are out of reach');

$node->stop;
done_testing();

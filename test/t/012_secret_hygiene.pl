# Secret hygiene: with every message logged (log_min_messages = debug5,
# log_statement = all, statements logged with every error), the provider
# keys and the master keys appear nowhere — not in the server log, not in
# pg_stat_activity, not in any error a caller sees, not in any table — while
# every error path runs, including providers that quote the key back.
# Even the statements that carry a key (llm_provider_set with "api_key",
# ALTER SYSTEM SET of a master key) are logged: the extension's log hook
# hides their text.  The keys from the environment and from a file never
# appear in SQL at all.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $secret = 'sk-hygiene-' . join('', map { sprintf '%02x', int(rand(256)) } 1 .. 16);
my $master = 'hygiene-master-' . join('', map { sprintf '%02x', int(rand(256)) } 1 .. 16);
my $previous = 'tap-master-key';    # the one gateway_node starts with
my $port = start_mock('--api-key', $secret);
my $base = "http://127.0.0.1:$port";

# the env-sourced providers read it from the server's environment
$ENV{LG_HYGIENE_KEY} = $secret;
my $node = gateway_node('hygiene', $port, "llm_gateway.max_retries = 0\n");
delete $ENV{LG_HYGIENE_KEY};
# Everything logged from here on.  (Not from the start: at debug3 and below
# the postmaster dumps its whole environment before any library is loaded,
# which is PostgreSQL's own doing; README says so.)
$node->append_conf('postgresql.conf',
	    "log_min_messages = debug5\n"
	  . "log_min_error_statement = debug5\n"
	  . "log_error_verbosity = verbose\n"
	  . "log_statement = 'all'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('log_statement') = 'all'")
  or die 'the logging settings were not loaded';

my $keyfile = $node->data_dir . '/hygiene.key';
open my $fh, '>', $keyfile or die "$keyfile: $!";
print $fh "$secret\n";
close $fh;
chmod 0600, $keyfile;

# The configuring call whose text carries the key, logged like the rest,
# and the same statement failing (its STATEMENT line).
$node->safe_psql('postgres', qq{
	SELECT llm_provider_set('openai', NULL, '{"api_key": "$secret"}');
});
$node->psql('postgres', qq{SELECT llm_provider_set('openai', NULL, '{"api_key": "$secret", "nonsense": 1}')});
$node->safe_psql('postgres', qq{
	SELECT llm_provider_set('envp', 'openai',
		'{"base_url": "$base/v1", "api_key_env": "LG_HYGIENE_KEY"}');
	SELECT llm_provider_set('filep', 'openai',
		'{"base_url": "$base/v1", "api_key_file": "$keyfile"}');
	SELECT llm_provider_set('anth', 'anthropic',
		'{"base_url": "$base", "api_key_env": "LG_HYGIENE_KEY"}');
	SELECT llm_provider_set('gem', 'gemini',
		'{"base_url": "$base", "api_key_file": "$keyfile"}');
	SELECT llm_provider_set('azp', 'azure_openai',
		'{"base_url": "$base", "api_key_env": "LG_HYGIENE_KEY"}');
	SELECT llm_provider_set('nokey', 'openai',
		'{"base_url": "$base/v1", "api_key_env": "LG_HYGIENE_UNSET"}');
	SELECT llm_model_set('h/' || p, p, '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 1, "output_usd_per_mtok": 1, "max_output_tokens": 1000}')
	  FROM unnest(ARRAY['openai', 'envp', 'filep', 'anth', 'gem', 'azp', 'nokey']) p;
	SELECT llm_provider_set(p, NULL, '{"breaker_failures": 1000}')
	  FROM unnest(ARRAY['openai', 'envp', 'filep', 'anth', 'gem', 'azp']) p;
	CREATE ROLE hygiene_member LOGIN;
	SELECT llm_tenant_set('members_only', '{"members": ["hygiene_member"]}');
	SELECT llm_tenant_set('closed', '{"members": []}');
});

# Every provider answers with the right key, from each source.
for my $p (qw(openai envp filep anth gem azp))
{
	is($node->safe_psql('postgres', "SELECT llm_chat('acme', 'h/$p', 'hello')"),
		'mock answer: hello', "$p: the key from its source works");
}

# The error paths, through every provider, each quoting the key back.
my @errors;
my @paths = (
	'[[mock:status=401]][[mock:message=Incorrect API key provided: {key}]]',
	'[[mock:status=400]][[mock:message=bad request for {key}]]',
	'[[mock:status=403]][[mock:message={key} may not]]',
	'[[mock:status=404]][[mock:message=no model for {key}]]',
	'[[mock:status=429]][[mock:message=slow down {key}]][[mock:retry_after=0]]',
	'[[mock:status=500]][[mock:message=crashed on {key}]]',
	'[[mock:status=503]][[mock:message=unavailable {key}]][[mock:retry_after=0]]',
	'[[mock:html]]', '[[mock:malformed]]', '[[mock:wrong_shape]]', '[[mock:empty]]',
	'[[mock:close]]', '[[mock:close_mid]]', '[[mock:redirect=http://198.51.100.7/x]]',
	'[[mock:slow_ms=3000]]', '[[mock:trickle_ms=200]]',
	'[[mock:oversize=4000000]]');
for my $p (qw(openai envp filep anth gem azp))
{
	for my $d (@paths)
	{
		my ($rc, $out, $err) = $node->psql('postgres',
			"SET llm_gateway.max_response_size = '1MB';
			 SELECT llm_chat('acme', 'h/$p', 'x $d', '{\"timeout_ms\": 400}')",
			extra_params => [ '-v', 'VERBOSITY=verbose' ]);
		push @errors, $err;
	}
}
# and the gateway's own refusals
for my $sql (
	"SELECT llm_chat('acme', 'h/nokey', 'x')",
	"SELECT llm_chat('nobody', 'h/openai', 'x')",
	"SELECT llm_chat('acme', 'no/such-model', 'x')",
	"SELECT llm_complete('acme', 'h/openai', '[{\"role\": \"user\"}]')",
	"SELECT llm_complete('acme', 'h/openai', '\"not an array\"')",
	"SELECT llm_chat('acme', 'h/openai', 'x', '{\"max_tokens\": -1}')",
	"SET statement_timeout = '300ms'; SELECT llm_chat('acme', 'h/openai', 'x [[mock:slow_ms=3000]]')",
	"SELECT llm_provider_set('bad', 'openai', '{\"base_url\": \"http://remote.example.com/v1\"}')")
{
	my ($rc, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	push @errors, $err;
}
is($node->safe_psql('postgres', "SELECT llm_chat('members_only', 'h/openai', 'member')",
	extra_params => [ '-U', 'hygiene_member' ]), 'mock answer: member', 'a member calls');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT llm_chat('closed', 'h/openai', 'x')",
	extra_params => [ '-U', 'hygiene_member', '-v', 'VERBOSITY=verbose' ]);
push @errors, $err;
is(scalar(grep { /ERROR/ } @errors), scalar(@errors), 'every error path raised an error')
  or diag(join("\n", grep { !/ERROR/ } @errors));
my $quoted = grep { /\[redacted\]/ } @errors;
ok($quoted >= 6 * 7, "the providers' quotes of the key came back redacted ($quoted)");
is(scalar(grep { index($_, $secret) >= 0 } @errors), 0, 'no error a caller saw holds the key');

# Master keys: rotated by changing the configuration and reloading it.
$node->safe_psql('postgres', "ALTER SYSTEM SET llm_gateway.previous_master_key = '$previous'");
$node->append_conf('postgresql.conf', "llm_gateway.master_key = '$master'\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT (llm_rotate_master_key() ->> 'current')::int = 1") or die 'rotation failed';
is($node->safe_psql('postgres', "SELECT llm_chat('acme', 'h/openai', 'after the reload')"),
	'mock answer: after the reload', 'calls still work after the reload');

# pg_stat_activity while calls are in flight
my $bg = $node->background_psql('postgres');
$bg->query_until(qr/started/, q{
	\echo started
	SELECT llm_chat('acme', 'h/filep', 'x [[mock:slow_ms=1500]]');
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Extension'"),
	'a call is in flight');
my $activity = $node->safe_psql('postgres',
	"SELECT string_agg(coalesce(query, '') || ' ' || coalesce(application_name, ''), ' ')
	   FROM pg_stat_activity");
ok(index($activity, $secret) < 0, 'pg_stat_activity shows no key during a call');
$bg->quit;

# The server log: everything above was logged at debug5.
my $log = slurp_file($node->logfile);
ok(length($log) > 100_000, 'the log holds the whole run (' . length($log) . ' bytes)');
ok(index($log, $secret) < 0, 'the server log holds no provider key');
ok(index($log, $master) < 0 && index($log, $previous) < 0,
	'the server log holds no master key');
like($log, qr/statement: SELECT llm_provider_set\('envp'/,
	'statements were logged (configuration with api_key_env included)');
like($log, qr/statement: \(hidden by llm_gateway/, 'the statements carrying a key were hidden');
like($log, qr/parameter "llm_gateway.master_key" changed \(value hidden/,
	'the master key change was logged without its value');

# Tables (after reading the log: these queries name the keys): no column of any table or view of the extension holds the key or a
# master key in clear, whoever reads it (the superuser sees them all).
my $tables = $node->safe_psql('postgres', q{
	SELECT string_agg(format('%I.%I', table_schema, table_name), ' ')
	  FROM information_schema.tables WHERE table_schema IN ('llm_gateway', 'public')});
my $hits = 0;
for my $t (split / /, $tables)
{
	my $found = $node->safe_psql('postgres', qq{
		SELECT count(*) FROM $t x
		 WHERE strpos(to_jsonb(x)::text, '$secret') > 0
		    OR strpos(to_jsonb(x)::text, '$master') > 0});
	$hits += $found;
	diag("$t holds a secret in clear") if $found;
}
is($hits, 0, 'no table or view holds a key in clear');
my $member_sees = $node->safe_psql('postgres', q{
	SELECT count(*) FROM information_schema.table_privileges
	 WHERE grantee IN ('PUBLIC', 'hygiene_member') AND table_name = 'providers'});
is($member_sees, '0', 'members cannot read the providers table at all');

$node->stop;

done_testing();

# TLS: peer and host verification are always on; llm_gateway.ca_bundle
# lets a private CA in.  The mock serves HTTPS with self-signed certificates.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use LlmGatewayTest;

my $dir = PostgreSQL::Test::Utils::tempdir();

sub self_signed
{
	my ($name, $san) = @_;
	system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
		'-subj', '/CN=llm_gateway test', '-addext', "subjectAltName=$san",
		'-keyout', "$dir/$name.key", '-out', "$dir/$name.crt") == 0
	  or die "openssl req failed";
	return ("$dir/$name.crt", "$dir/$name.key");
}

my ($good_crt, $good_key) = self_signed('good', 'IP:127.0.0.1');
my ($other_crt, $other_key) = self_signed('other', 'DNS:provider.example');

my $port = start_mock('--tls-cert', $good_crt, '--tls-key', $good_key);
my $wrong_host_port = start_mock('--tls-cert', $other_crt, '--tls-key', $other_key);
my $plain_port = start_mock();
my $node = gateway_node('tls', $plain_port);
$node->safe_psql('postgres', qq{
	SELECT llm_provider_set('openai', NULL, '{"base_url": "https://127.0.0.1:$port/v1"}');
	SELECT llm_provider_set('other', 'openai',
		jsonb_build_object('base_url', 'https://127.0.0.1:$wrong_host_port/v1', 'api_key', '$MOCK_KEY'));
	SELECT llm_model_set('test/other', 'other', '{"upstream_model": "gpt-4o-mini",
		"input_usd_per_mtok": 0, "output_usd_per_mtok": 0}');
});

sub call
{
	my ($model) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT llm_chat('acme', '$model', 'over tls')");
	return ($out, $err);
}

my ($out, $err) = call('openai/gpt-4o-mini');
like($err, qr/LG026: could not exchange data with provider "openai"/,
	'a self-signed certificate is refused');
like($err, qr/certificate/i, 'and the detail says why');

sub set_ca_bundle
{
	my ($file) = @_;
	$node->append_conf('postgresql.conf', "llm_gateway.ca_bundle = '$file'\n");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('llm_gateway.ca_bundle') = '$file'")
	  or die "the reload did not take";
}

set_ca_bundle($good_crt);
($out, $err) = call('openai/gpt-4o-mini');
is($out, 'mock answer: over tls', 'with its CA in llm_gateway.ca_bundle the call succeeds');

set_ca_bundle($other_crt);
($out, $err) = call('test/other');
like($err, qr/LG026: could not exchange data with provider "other"/,
	'a trusted certificate for another host name is refused');
like($err, qr/subject name|does not match|no alternative/i, 'host verification says so');

$node->stop;
done_testing();

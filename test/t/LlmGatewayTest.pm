# LlmGatewayTest — shared set-up for the llm_gateway TAP tests: a private
# mock provider per test script, and clusters that preload the extension.
package LlmGatewayTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

our @EXPORT = qw(start_mock mock_stats mock_reset gateway_node $MOCK_KEY);
our $MOCK_KEY = 'sk-mock-0123456789abcdef';

my @mock_pids;

# Start the mock provider on a free loopback port; returns the port.  Extra
# arguments go to the mock (--tls-cert FILE for HTTPS, say).
sub start_mock
{
	my @extra = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $script = abs_path(dirname(__FILE__) . '/../mock/mock_provider.py');
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec('python3', $script, '--port', '0', '--port-file', "$dir/port",
			'--log', "$dir/mock.log", @extra)
		  or die "exec python3: $!";
	}
	push @mock_pids, $pid;
	for (1 .. 200)
	{
		if (-s "$dir/port")
		{
			open my $fh, '<', "$dir/port" or die $!;
			my $port = <$fh>;
			chomp $port;
			return $port;
		}
		usleep(50_000);
	}
	die "mock provider did not start";
}

END
{
	kill 'TERM', @mock_pids if @mock_pids;
	waitpid($_, 0) for @mock_pids;
}

sub mock_stats
{
	my ($port) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)->get("http://127.0.0.1:$port/_mock/stats");
	die "mock stats: $r->{status} $r->{reason}" unless $r->{success};
	return decode_json($r->{content});
}

sub mock_reset
{
	my ($port) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)->post("http://127.0.0.1:$port/_mock/reset");
	die "mock reset: $r->{status} $r->{reason}" unless $r->{success};
	return;
}

# A started cluster with the extension installed, the "openai" provider
# pointed at the mock, and a tenant "acme" open to every role.
sub gateway_node
{
	my ($name, $port, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'llm_gateway'\n"
		  . "llm_gateway.master_key = 'tap-master-key'\n"
		  . "llm_gateway.cache = off\n"
		  . "llm_gateway.retry_backoff_ms = 10\n"
		  . ($extra_conf // ''));
	$node->start;
	$node->safe_psql('postgres', qq{
		CREATE EXTENSION llm_gateway;
		SELECT llm_provider_set('openai', 'openai',
			jsonb_build_object('base_url', 'http://127.0.0.1:$port/v1',
			                   'api_key', '$MOCK_KEY'));
		SELECT llm_tenant_set('acme', '{"members": ["public"]}');
	});
	return $node;
}

1;

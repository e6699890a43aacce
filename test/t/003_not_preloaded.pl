# Without shared_preload_libraries the extension refuses, clearly.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('plain');
$node->init;
$node->start;

my ($rc, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nCREATE EXTENSION llm_gateway;");
isnt($rc, 0, 'CREATE EXTENSION fails without the preload');
like($err, qr/LG090: llm_gateway must be loaded via shared_preload_libraries/,
	'with its own SQLSTATE and a clear message');
like($err, qr/HINT:  Add llm_gateway to shared_preload_libraries/, 'and a hint');

($rc, $out, $err) = $node->psql('postgres', "LOAD 'llm_gateway';");
like($err, qr/must be loaded via shared_preload_libraries/, 'LOAD is refused the same way');

$node->stop;
done_testing();

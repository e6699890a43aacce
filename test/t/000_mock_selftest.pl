# The mock provider is only as good as its strictness: its own self-test
# (every endpoint, directive and rejection) runs first.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

my $selftest = abs_path(dirname(__FILE__) . '/../mock/selftest_mock.py');
my $out = `python3 $selftest 2>&1`;
is($? >> 8, 0, 'the mock provider self-test passes') or diag($out);
like($out, qr/mock selftest: \d+ checks passed/, 'and reports its checks');
done_testing();

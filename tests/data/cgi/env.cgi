#!/usr/bin/perl
# A CGI script that prints its environment as JSON: the protected script of the authorizer tests
# (tests/integration/authorizer.test.mjs) shows which variables the web server handed it.
use strict;
use warnings;
use JSON::PP;

print "Content-Type: application/json\r\n";
print "Cache-Control: no-store\r\n\r\n";
print JSON::PP->new->canonical->encode({%ENV}), "\n";

// The one test module: every tests/unit/*.cpp adds its own suite.
#define BOOST_TEST_MODULE kinde_fcgi
#include <boost/test/unit_test.hpp>

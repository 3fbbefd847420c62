// Socket activation's environment (sd_listen_fds(3)): which process LISTEN_FDS is meant for, and
// the descriptor check. The whole path (fd 3 moved to fd 0, workers, spawn-fcgi) is driven for real
// in tests/integration/process_model.test.mjs.
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/listener.hpp"

using namespace kinde;

BOOST_AUTO_TEST_SUITE(listener)

BOOST_AUTO_TEST_CASE(listen_fds_counts_only_for_the_named_process) {
  auto mine = listen_fds_count(std::string("4242"), std::string("1"), 4242);
  BOOST_REQUIRE(mine.ok());
  BOOST_TEST(*mine == 1);
  // Meant for a parent (a shell that exec'd us keeps the pid; a fork does not).
  auto other = listen_fds_count(std::string("4241"), std::string("1"), 4242);
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(*other == 0);
  // Either variable missing: nothing was passed.
  BOOST_TEST(*listen_fds_count(std::nullopt, std::string("1"), 4242) == 0);
  BOOST_TEST(*listen_fds_count(std::string("4242"), std::nullopt, 4242) == 0);
  BOOST_TEST(*listen_fds_count(std::string("4242"), std::string("3"), 4242) == 3);
}

BOOST_AUTO_TEST_CASE(listen_fds_garbage_is_an_error) {
  for (const char* bad : {"", "x", "-1", "1 ", "99999999999999999999"}) {
    auto r = listen_fds_count(std::string(bad), std::string("1"), 4242);
    BOOST_TEST(!r.ok(), "LISTEN_PID '" << bad << "'");
    if (!r.ok()) BOOST_TEST(r.error().code == kListenFdsInvalid);
  }
  for (const char* bad : {"", "one", "-1", "100000"}) {
    auto r = listen_fds_count(std::string("4242"), std::string(bad), 4242);
    BOOST_TEST(!r.ok(), "LISTEN_FDS '" << bad << "'");
  }
}

BOOST_AUTO_TEST_CASE(only_a_listening_stream_socket_counts) {
  int pair[2];
  BOOST_REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  BOOST_TEST(!is_listening_socket(pair[0]));  // connected, not listening (what FCGX_IsCGI calls CGI)
  close(pair[0]);
  close(pair[1]);

  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  BOOST_REQUIRE(s >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;  // autobind: an abstract address, no file
  BOOST_REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(sa_family_t)) == 0);
  BOOST_TEST(!is_listening_socket(s));
  BOOST_REQUIRE(listen(s, 4) == 0);
  BOOST_TEST(is_listening_socket(s));
  close(s);

  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  BOOST_TEST(!is_listening_socket(d));
  close(d);
  int p[2];
  BOOST_REQUIRE(pipe(p) == 0);
  BOOST_TEST(!is_listening_socket(p[0]));
  close(p[0]);
  close(p[1]);
}

BOOST_AUTO_TEST_SUITE_END()

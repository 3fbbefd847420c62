// ForkedTransport: a provider call performed by a forked child comes back whole (answer or Error),
// and a child that hangs, dies or says too much is an Error, never a hang or a crash of the caller.
#include <boost/test/unit_test.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "http/forked_transport.hpp"

using namespace kinde;

namespace {

// Runs the given function (in the child) for each request.
class ScriptedTransport : public HttpTransport {
 public:
  explicit ScriptedTransport(std::function<Result<HttpResponse>(const HttpRequest&)> f) : f_(std::move(f)) {}
  Result<HttpResponse> perform(const HttpRequest& request) override { return f_(request); }

 private:
  std::function<Result<HttpResponse>(const HttpRequest&)> f_;
};

ForkedTransport forked(std::function<Result<HttpResponse>(const HttpRequest&)> f) {
  return ForkedTransport(std::make_unique<ScriptedTransport>(std::move(f)));
}

HttpRequest request_with_timeout(long total_ms) {
  HttpRequest req;
  req.url = "https://idp.example/oauth2/token";
  req.connect_timeout_ms = total_ms;
  req.total_timeout_ms = total_ms;
  return req;
}

// No child of this process is left behind (running or a zombie).
bool no_children_left() {
  return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
}

// Reaps what earlier tests in this process may have left, so that no_children_left() speaks of this test only.
struct ReapEarlierChildren {
  ReapEarlierChildren() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(forked_transport, ReapEarlierChildren)

BOOST_AUTO_TEST_CASE(an_answer_comes_back_byte_for_byte) {
  std::string body;
  for (int i = 0; i < 300000; ++i) body.push_back(static_cast<char>(i * 7));  // NULs and high bytes included
  auto t = forked([&](const HttpRequest& req) -> Result<HttpResponse> {
    HttpResponse r;
    r.status = req.method == "POST" ? 201 : 500;
    r.headers["content-type"] = "application/json";
    r.headers["x-empty"] = "";
    r.headers["x-url"] = req.url + "|" + req.body;
    r.body = body;
    return r;
  });
  HttpRequest req = request_with_timeout(5000);
  req.method = "POST";
  req.body = "grant_type=refresh_token";
  auto r = t.perform(req);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->status == 201);
  BOOST_TEST(r->headers.size() == 3u);
  BOOST_TEST(r->headers["content-type"] == "application/json");
  BOOST_TEST(r->headers["x-empty"] == "");
  BOOST_TEST(r->headers["x-url"] == "https://idp.example/oauth2/token|grant_type=refresh_token");
  BOOST_TEST(r->body.size() == body.size());
  BOOST_TEST((r->body == body));
  BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(an_error_comes_back_with_its_code_and_detail) {
  auto t = forked([](const HttpRequest&) -> Result<HttpResponse> {
    return make_error(kHttpTls, "certificate verify failed (https://idp.example/)");
  });
  auto r = t.perform(request_with_timeout(5000));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kHttpTls);
  BOOST_TEST(r.error().detail == "certificate verify failed (https://idp.example/)");
  BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(the_call_runs_in_another_process_and_leaves_this_one_unchanged) {
  const pid_t me = ::getpid();
  int calls_here = 0;
  auto t = forked([&](const HttpRequest&) -> Result<HttpResponse> {
    ++calls_here;  // the child's copy
    HttpResponse r;
    r.status = 200;
    r.body = std::to_string(::getpid()) + " " + std::to_string(::getppid());
    return r;
  });
  auto r = t.perform(request_with_timeout(5000));
  BOOST_REQUIRE(r);
  BOOST_TEST(r->body != std::to_string(me) + " " + std::to_string(::getppid()));
  BOOST_TEST(r->body.substr(r->body.find(' ') + 1) == std::to_string(me));
  BOOST_TEST(calls_here == 0);
}

BOOST_AUTO_TEST_CASE(a_child_sees_none_of_the_callers_descriptors) {
  int fd = ::open("/dev/null", O_RDONLY);
  BOOST_REQUIRE(fd >= 0);
  int high = ::fcntl(fd, F_DUPFD, 200);  // below and above the child's pipe number
  int higher = ::fcntl(fd, F_DUPFD, 300);
  auto t = forked([&](const HttpRequest&) -> Result<HttpResponse> {
    HttpResponse r;
    r.status = 200;
    for (int f : {fd, high, higher}) r.body += ::fcntl(f, F_GETFD) < 0 ? "closed " : "open ";
    return r;
  });
  auto r = t.perform(request_with_timeout(5000));
  BOOST_REQUIRE(r);
  BOOST_TEST(r->body == "closed closed closed ");
  BOOST_TEST(::fcntl(fd, F_GETFD) >= 0);  // still open here
  ::close(fd);
  ::close(high);
  ::close(higher);
}

BOOST_AUTO_TEST_CASE(a_child_that_dies_is_an_http_failed_error) {
  auto t = forked([](const HttpRequest&) -> Result<HttpResponse> { _exit(3); });
  auto r = t.perform(request_with_timeout(5000));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kHttpFailed);
  BOOST_TEST(r.error().detail.find("without an answer") != std::string::npos);
  BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(an_answer_larger_than_4_mib_is_refused_and_the_child_reaped) {
  auto t = forked([](const HttpRequest&) -> Result<HttpResponse> {
    HttpResponse r;
    r.status = 200;
    r.body.assign(5 * 1024 * 1024, 'x');  // libcurl's transport caps at 1 MiB; a child must not flood the caller
    return r;
  });
  auto r = t.perform(request_with_timeout(5000));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kHttpFailed);
  BOOST_TEST(r.error().detail.find("larger than 4 MiB") != std::string::npos);
  BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(a_child_that_hangs_is_killed_and_is_an_http_timeout) {
  auto t = forked([](const HttpRequest&) -> Result<HttpResponse> {
    std::this_thread::sleep_for(std::chrono::seconds(30));
    return make_error(kHttpFailed, "not reached");
  });
  auto start = std::chrono::steady_clock::now();
  auto r = t.perform(request_with_timeout(200));
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kHttpTimeout);
  BOOST_TEST((took < std::chrono::seconds(10)));  // 200 ms + the grace, never the child's 30 s
  BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(a_library_the_child_loads_is_never_loaded_in_the_caller) {
  // What libcurl is to the real transport, glibc's libanl is here: a library this process has not
  // loaded, which the child loads while it performs the call.
  BOOST_REQUIRE(::dlopen("libanl.so.1", RTLD_NOLOAD | RTLD_LAZY) == nullptr);
  auto t = forked([](const HttpRequest&) -> Result<HttpResponse> {
    HttpResponse r;
    r.status = ::dlopen("libanl.so.1", RTLD_NOW) != nullptr ? 200 : 500;
    return r;
  });
  auto r = t.perform(request_with_timeout(5000));
  BOOST_REQUIRE(r);
  BOOST_TEST(r->status == 200);
  BOOST_TEST(::dlopen("libanl.so.1", RTLD_NOLOAD | RTLD_LAZY) == nullptr);
}

BOOST_AUTO_TEST_CASE(the_real_transport_s_errors_come_back_from_the_child) {
  ForkedTransport t(std::make_unique<CurlTransport>("libkinde-test-missing-curl.so.4"));
  auto r = t.perform(request_with_timeout(2000));
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == kHttpFailed);
  BOOST_TEST(r.error().detail.find("libkinde-test-missing-curl") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

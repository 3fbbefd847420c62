// The signed-in home page over the file store, whose decoded records are shared between requests: a
// repeat request reuses the page, but a changed session, another session or a lapsed access token never
// gets a page rendered for something else.
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "fakes.hpp"
#include "session/file_store.hpp"

using namespace kinde;
using namespace kinde::testing;

namespace {

// A file store in a fresh temporary directory, removed afterwards.
struct FileStoreApp {
  std::string dir;
  OpenSslRandom random;
  std::unique_ptr<TestApp> t;
  FileStoreApp() {
    char tmpl[] = "/tmp/kinde-homecache-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    FileStoreOptions o;
    o.dir = dir + "/sessions";
    o.secret = std::string(40, 'h');
    o.fsync = false;
    auto store = open_file_session_store(o, random);
    if (!store) throw std::runtime_error(store.error().detail);
    t = std::make_unique<TestApp>(std::move(*store));
  }
  ~FileStoreApp() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string home(const std::string& id) {
    RequestSpec s;
    s.cookie = t->session_cookie_header(id);
    Response r = t->handle(s);
    BOOST_REQUIRE(r.status == 200);
    return r.body;
  }
};

SignedIn record_of_user(const std::string& given, const std::string& permission) {
  SignedIn rec;
  rec.user = {{"id", "kp_" + given}, {"given_name", given}, {"family_name", "Tester"}, {"email", given + "@example.com"}};
  rec.tokens.access_token = "ACCESS";
  rec.tokens.refresh_token = "REFRESH";
  rec.tokens.expires_at = kNow + 86400;
  rec.access_claims = {{"permissions", {permission}}};
  return rec;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(home_page_per_record)

BOOST_AUTO_TEST_CASE(a_repeat_request_gets_the_same_page_and_a_changed_session_its_new_one) {
  FileStoreApp f;
  const std::string id = f.t->save_record(record_of_user("Ada", "read:ada"));
  const std::string first = f.home(id);
  BOOST_TEST(first.find("Ada Tester") != std::string::npos);
  BOOST_TEST(f.home(id) == first);
  // The session changes in the store (another process's refresh, say): the next page shows it.
  auto changed = f.t->store->update(id, kNow, [](std::optional<Session>& cur) {
    SignedIn rec = *signed_in_from(cur->data);
    rec.user["given_name"] = "Augusta";
    rec.access_claims = {{"permissions", {"write:augusta"}}};
    cur->data = record_to_json(rec);
    return true;
  });
  BOOST_REQUIRE(changed.ok());
  const std::string after = f.home(id);
  BOOST_TEST(after.find("Augusta Tester") != std::string::npos);
  BOOST_TEST(after.find("write:augusta") != std::string::npos);
  BOOST_TEST(after.find("Ada Tester") == std::string::npos);
  BOOST_TEST(after.find("read:ada") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(two_sessions_never_see_each_others_page) {
  FileStoreApp f;
  const std::string ada = f.t->save_record(record_of_user("Ada", "read:ada"));
  const std::string grace = f.t->save_record(record_of_user("Grace", "read:grace"));
  for (int round = 0; round < 2; ++round) {
    const std::string a = f.home(ada), g = f.home(grace);
    BOOST_TEST(a.find("Ada Tester") != std::string::npos);
    BOOST_TEST(a.find("Grace") == std::string::npos);
    BOOST_TEST(g.find("Grace Tester") != std::string::npos);
    BOOST_TEST(g.find("Ada") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_lapsed_access_token_drops_its_claims_from_a_page_shown_before) {
  FileStoreApp f;
  SignedIn rec = record_of_user("Ada", "read:ada");
  rec.tokens.refresh_token.clear();  // nothing can renew it
  rec.tokens.expires_at = kNow + 30;
  const std::string id = f.t->save_record(rec);
  BOOST_TEST(f.home(id).find("read:ada") != std::string::npos);
  f.t->clock.set(kNow + 31);  // same stored bytes, but the access token has expired
  const std::string lapsed = f.home(id);
  BOOST_TEST(lapsed.find("Ada Tester") != std::string::npos);
  BOOST_TEST(lapsed.find("read:ada") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_removed_session_is_signed_out_even_after_its_page_was_kept) {
  FileStoreApp f;
  const std::string id = f.t->save_record(record_of_user("Ada", "read:ada"));
  BOOST_TEST(f.home(id).find("Ada Tester") != std::string::npos);
  BOOST_REQUIRE(f.t->store->remove(id).ok());
  const std::string out = f.home(id);
  BOOST_TEST(out.find("Ada Tester") == std::string::npos);
  BOOST_TEST(out.find("Sign in") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

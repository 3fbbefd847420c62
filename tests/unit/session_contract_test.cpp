// The SessionStore contract, run against every implementation. To add a store, write a maker
// struct like FileStoreMaker below and append it to StoreMakers.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "session/file_store.hpp"
#include "session/redis_store.hpp"
#include "session/session.hpp"
#include "util/random.hpp"

using namespace kinde;

namespace {

constexpr std::int64_t kT0 = 1'700'000'000;

// Each maker owns whatever its store needs (a temp dir, a server connection) for one test case.
struct MemoryStoreMaker {
  std::unique_ptr<SessionStore> make(SessionLimits limits) { return make_memory_session_store(limits); }
};

struct FileStoreMaker {
  std::string dir;
  OpenSslRandom random;
  FileStoreMaker() {
    char tmpl[] = "/tmp/kinde-contract-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir = std::string(tmpl) + "/sessions";  // missing on purpose: the store creates it
  }
  ~FileStoreMaker() {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(dir).parent_path(), ec);
  }
  std::unique_ptr<SessionStore> make(SessionLimits limits) {
    FileStoreOptions o;
    o.dir = dir;
    o.secret = std::string(40, 's');
    o.limits = limits;
    o.fsync = false;  // durability is not what this suite checks; keeps it fast
    auto r = open_file_session_store(o, random);
    if (!r) throw std::runtime_error(r.error().code + ": " + r.error().detail);
    return std::move(r).value();
  }
};

}  // namespace

namespace kinde_test {
// A redis-server child of this test process, shared by the suites (defined in redis_store_test.cpp;
// throws, failing the test, when redis-server is not installed).
std::string shared_redis_url();
}  // namespace kinde_test

namespace {

// Each maker gets its own key prefix on the shared server, so collect_expired sees only its keys.
struct RedisStoreMaker {
  OpenSslRandom random;
  std::unique_ptr<SessionStore> make(SessionLimits limits) {
    RedisStoreOptions o;
    o.url = kinde_test::shared_redis_url();
    o.secret = std::string(40, 's');
    o.key_prefix = "contract-" + random.token(8) + ":";
    o.limits = limits;
    auto r = open_redis_session_store(o, random);
    if (!r) throw std::runtime_error(r.error().code + ": " + r.error().detail);
    return std::move(r).value();
  }
};

using StoreMakers = boost::mpl::list<MemoryStoreMaker, FileStoreMaker, RedisStoreMaker>;

SessionLimits limits(std::int64_t idle = 3600, std::int64_t max_age = 86400) {
  SessionLimits l;
  l.idle_timeout = idle;
  l.max_age = max_age;
  return l;
}

Session make_session(Random& r, std::int64_t created = kT0, std::int64_t last_used = kT0) {
  Session s;
  s.id = r.token(32);
  s.created = created;
  s.last_used = last_used;
  s.data = {{"refresh_token", "rt-" + r.token(8)}, {"user", {{"given_name", "Zoë"}, {"orgs", {"org_a", "org_b"}}}}};
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_contract)

BOOST_AUTO_TEST_CASE_TEMPLATE(unknown_id_loads_as_no_session, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  auto r = store->load(rnd.token(32), kT0);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(saved_session_loads_with_same_times_and_data, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd, kT0 - 100, kT0 - 10);
  BOOST_REQUIRE(store->save(s).ok());
  auto r = store->load(s.id, kT0);
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(r->has_value());
  BOOST_TEST((*r)->id == s.id);
  BOOST_TEST((*r)->created == kT0 - 100);
  BOOST_TEST((*r)->last_used == kT0 - 10);
  BOOST_TEST((*r)->data == s.data);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(load_does_not_touch_last_used, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_REQUIRE(store->load(s.id, kT0 + 500).ok());
  auto r = store->load(s.id, kT0 + 1000);
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST((*r)->last_used == kT0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(second_save_replaces_the_first, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  s.data = {{"v", 2}};
  s.last_used = kT0 + 5;
  BOOST_REQUIRE(store->save(s).ok());
  auto r = store->load(s.id, kT0 + 6);
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST((*r)->data == (nlohmann::json{{"v", 2}}));
  BOOST_TEST((*r)->last_used == kT0 + 5);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(sessions_are_independent, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session a = make_session(rnd), b = make_session(rnd);
  a.data = {{"who", "a"}};
  b.data = {{"who", "b"}};
  BOOST_REQUIRE(store->save(a).ok());
  BOOST_REQUIRE(store->save(b).ok());
  BOOST_REQUIRE(store->remove(a.id).ok());
  BOOST_TEST(!store->load(a.id, kT0)->has_value());
  auto rb = store->load(b.id, kT0);
  BOOST_REQUIRE(rb.ok() && rb->has_value());
  BOOST_TEST((*rb)->data["who"] == "b");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(malformed_ids_are_no_session_and_cannot_be_saved, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  const std::string good = rnd.token(32);
  const std::string bad[] = {"",
                             good.substr(0, 42),
                             good + "A",
                             std::string(43, '.'),
                             "../../../../../../../../../../../etc/passwd",
                             good.substr(0, 42) + "/",
                             good.substr(0, 42) + "=",
                             good.substr(0, 42) + "+",
                             std::string(good.substr(0, 21)) + '\0' + good.substr(22),
                             good.substr(0, 42) + "\xc3"};
  for (const auto& id : bad) {
    auto r = store->load(id, kT0);
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(!r->has_value());
    Session s;
    s.id = id;
    s.created = s.last_used = kT0;
    auto w = store->save(s);
    BOOST_TEST(!w.ok());
    if (!w.ok()) BOOST_TEST(w.error().code == kSessionBadId);
    BOOST_TEST(store->remove(id).ok());
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(remove_of_absent_session_is_not_an_error, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  BOOST_TEST(store->remove(rnd.token(32)).ok());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(idle_timeout_expires_a_session_and_removes_it, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits(600, 86400));
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  // Exactly at the limit it is still alive; one second later it is gone.
  BOOST_TEST(store->load(s.id, kT0 + 600)->has_value());
  BOOST_TEST(!store->load(s.id, kT0 + 601)->has_value());
  // Removed, not just hidden: a load with an earlier clock does not bring it back.
  BOOST_TEST(!store->load(s.id, kT0 + 1)->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(absolute_lifetime_expires_a_recently_used_session, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits(600, 3000));
  Session s = make_session(rnd, kT0, kT0 + 2900);
  BOOST_REQUIRE(store->save(s).ok());
  BOOST_TEST(store->load(s.id, kT0 + 3000)->has_value());
  BOOST_TEST(!store->load(s.id, kT0 + 3001)->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_returning_true_persists_the_change, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  auto r = store->update(s.id, kT0 + 10, [](std::optional<Session>& cur) {
    if (!cur) return false;
    cur->data["refresh_token"] = "rotated";
    cur->last_used = kT0 + 10;
    return true;
  });
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST((*r)->data["refresh_token"] == "rotated");
  auto l = store->load(s.id, kT0 + 11);
  BOOST_REQUIRE(l.ok() && l->has_value());
  BOOST_TEST((*l)->data["refresh_token"] == "rotated");
  BOOST_TEST((*l)->last_used == kT0 + 10);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_returning_false_writes_nothing_and_returns_the_stored_session, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  auto r = store->update(s.id, kT0, [](std::optional<Session>& cur) {
    cur->data["scratch"] = true;
    return false;
  });
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST(!(*r)->data.contains("scratch"));
  BOOST_TEST(!(*store->load(s.id, kT0))->data.contains("scratch"));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_setting_nullopt_removes_the_session, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  auto r = store->update(s.id, kT0, [](std::optional<Session>& cur) {
    cur.reset();
    return true;
  });
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!r->has_value());
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_of_absent_session_passes_nullopt_and_may_create_it, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  const std::string id = rnd.token(32);
  bool saw_nullopt = false;
  auto r = store->update(id, kT0, [&](std::optional<Session>& cur) {
    saw_nullopt = !cur.has_value();
    cur = Session{id, kT0, kT0, {{"pending_state", "abc"}}};
    return true;
  });
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST(saw_nullopt);
  auto l = store->load(id, kT0);
  BOOST_REQUIRE(l.ok() && l->has_value());
  BOOST_TEST((*l)->data["pending_state"] == "abc");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_of_expired_session_passes_nullopt, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits(60, 86400));
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  bool saw_session = true;
  auto r = store->update(s.id, kT0 + 61, [&](std::optional<Session>& cur) {
    saw_session = cur.has_value();
    return false;
  });
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(!saw_session);
  BOOST_TEST(!r->has_value());
  BOOST_TEST(!store->load(s.id, kT0)->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_may_not_change_the_id, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  const std::string other = rnd.token(32);
  auto r = store->update(s.id, kT0, [&](std::optional<Session>& cur) {
    cur->id = other;
    return true;
  });
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.error().code == kSessionBadId);
  BOOST_TEST(!store->load(other, kT0)->has_value());
  BOOST_TEST(store->load(s.id, kT0)->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(collect_with_no_budget_removes_all_expired_and_only_those, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits(600, 86400));
  std::vector<std::string> live, dead;
  for (int i = 0; i < 12; ++i) {
    Session s = make_session(rnd, kT0, i % 3 == 0 ? kT0 + 1000 : kT0);
    BOOST_REQUIRE(store->save(s).ok());
    (i % 3 == 0 ? live : dead).push_back(s.id);
  }
  auto n = store->collect_expired(kT0 + 1200, 0);
  BOOST_REQUIRE(n.ok());
  BOOST_TEST(*n == dead.size());
  for (const auto& id : live) BOOST_TEST(store->load(id, kT0 + 1200)->has_value());
  // Nothing left to collect.
  BOOST_TEST(*store->collect_expired(kT0 + 1200, 0) == 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(collect_with_budget_never_exceeds_it_and_eventually_gets_all, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits(600, 86400));
  std::vector<std::string> live;
  for (int i = 0; i < 10; ++i) {
    Session s = make_session(rnd, kT0, i < 3 ? kT0 + 1000 : kT0);
    BOOST_REQUIRE(store->save(s).ok());
    if (i < 3) live.push_back(s.id);
  }
  std::size_t total = 0;
  for (int call = 0; call < 2000 && total < 7; ++call) {
    auto n = store->collect_expired(kT0 + 1200, 2);
    BOOST_REQUIRE(n.ok());
    BOOST_TEST(*n <= 2u);
    total += *n;
  }
  BOOST_TEST(total == 7u);
  for (const auto& id : live) BOOST_TEST(store->load(id, kT0 + 1200)->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(data_with_unicode_and_nesting_round_trips, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  s.data = {{"name", "Łukasz 日本 \"quoted\" \\ \n"},
            {"perms", {"read:items", "write:items"}},
            {"flags", {{"theme", {{"t", "s"}, {"v", "dark"}}}, {"n", {{"t", "i"}, {"v", -42}}}}},
            {"empty", nlohmann::json::object()},
            {"null", nullptr}};
  BOOST_REQUIRE(store->save(s).ok());
  auto l = store->load(s.id, kT0);
  BOOST_REQUIRE(l.ok() && l->has_value());
  BOOST_TEST((*l)->data == s.data);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(limits_are_the_configured_ones, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits(123, 4567));
  Session idle = make_session(rnd);
  BOOST_REQUIRE(store->save(idle).ok());
  BOOST_TEST(store->load(idle.id, idle.last_used + 123)->has_value());   // idle for exactly the limit
  BOOST_TEST(!store->load(idle.id, idle.last_used + 124)->has_value());  // one second past it
  Session old = make_session(rnd);
  old.created = old.last_used - 4568;  // used just now, signed in longer ago than max_age
  BOOST_REQUIRE(store->save(old).ok());
  BOOST_TEST(!store->load(old.id, old.last_used)->has_value());
}

// ---- the refresh grace cache -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(a_kept_refresh_result_is_found_by_the_same_session_and_spent_token_for_30_s, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  const std::string id = rnd.token(32), other = rnd.token(32);
  const nlohmann::json result = {{"tokens", {{"access_token", "at-new"}, {"refresh_token", "rt-new"}}},
                                 {"user", {{"given_name", "Zoë"}}}};
  BOOST_REQUIRE(store->keep_refresh_result(id, "rt-spent", result, kT0).ok());
  auto hit = store->refresh_result(id, "rt-spent", kT0 + kRefreshGraceSeconds - 1);
  BOOST_REQUIRE(hit.ok());
  BOOST_REQUIRE(hit->has_value());
  BOOST_TEST(**hit == result);
  // Another token, another session, or after the grace period: nothing.
  auto r1 = store->refresh_result(id, "rt-new", kT0);
  auto r2 = store->refresh_result(other, "rt-spent", kT0);
  auto r3 = store->refresh_result(id, "rt-spent", kT0 + kRefreshGraceSeconds);
  BOOST_REQUIRE(r1.ok() && r2.ok() && r3.ok());
  BOOST_TEST(!r1->has_value());
  BOOST_TEST(!r2->has_value());
  BOOST_TEST(!r3->has_value());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_grace_cache_may_be_used_inside_an_update_of_the_same_session, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  Session s = make_session(rnd);
  BOOST_REQUIRE(store->save(s).ok());
  auto u = store->update(s.id, kT0, [&](std::optional<Session>& cur) {
    BOOST_REQUIRE(store->keep_refresh_result(s.id, "rt-a", {{"tokens", {{"refresh_token", "rt-b"}}}}, kT0).ok());
    auto kept = store->refresh_result(s.id, "rt-a", kT0);
    BOOST_REQUIRE(kept.ok() && kept->has_value());
    cur->data["tokens"] = (**kept)["tokens"];
    return true;
  });
  BOOST_REQUIRE(u.ok() && u->has_value());
  BOOST_TEST((*u)->data["tokens"]["refresh_token"] == "rt-b");
  // A kept result is not a session.
  auto l = store->load(s.id, kT0);
  BOOST_REQUIRE(l.ok() && l->has_value());
  BOOST_TEST((*l)->data["tokens"]["refresh_token"] == "rt-b");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_newer_kept_result_replaces_the_older_one, Maker, StoreMakers) {
  Maker m;
  OpenSslRandom rnd;
  auto store = m.make(limits());
  const std::string id = rnd.token(32);
  BOOST_REQUIRE(store->keep_refresh_result(id, "rt-x", {{"n", 1}}, kT0).ok());
  BOOST_REQUIRE(store->keep_refresh_result(id, "rt-x", {{"n", 2}}, kT0 + 20).ok());
  auto r = store->refresh_result(id, "rt-x", kT0 + 40);  // inside the second one's 30 s
  BOOST_REQUIRE(r.ok() && r->has_value());
  BOOST_TEST((**r)["n"] == 2);
}

BOOST_AUTO_TEST_SUITE_END()

// RecordPageCache: pages kept per decoded session record (the signed-in home page).
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include "app/page_cache.hpp"

using namespace kinde;

namespace {

std::shared_ptr<const SignedIn> record_named(const std::string& name) {
  SignedIn r;
  r.user = {{"id", "kp_1"}, {"given_name", name}};
  return std::make_shared<const SignedIn>(std::move(r));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(record_page_cache)

BOOST_AUTO_TEST_CASE(the_same_record_object_finds_its_page) {
  RecordPageCache cache;
  auto rec = record_named("Ada");
  BOOST_TEST(!cache.find(rec, false, ""));
  cache.put(rec, false, "", "page of Ada");
  auto hit = cache.find(rec, false, "");
  BOOST_REQUIRE(hit.has_value());
  BOOST_TEST(*hit == "page of Ada");
}

BOOST_AUTO_TEST_CASE(an_equal_record_of_another_session_or_a_changed_one_misses) {
  RecordPageCache cache;
  auto ada = record_named("Ada");
  cache.put(ada, false, "", "page of Ada");
  // Another session (or the same session after a change) decodes into another object: never served this page.
  BOOST_TEST(!cache.find(record_named("Ada"), false, ""));
  BOOST_TEST(!cache.find(record_named("Augusta"), false, ""));
  BOOST_TEST(!cache.find(nullptr, false, ""));
}

BOOST_AUTO_TEST_CASE(lapse_state_and_base_path_are_part_of_the_key) {
  RecordPageCache cache;
  auto rec = record_named("Ada");
  cache.put(rec, false, "", "root page");
  BOOST_TEST(!cache.find(rec, true, ""));
  BOOST_TEST(!cache.find(rec, false, "/app"));
  cache.put(rec, true, "", "lapsed page");
  cache.put(rec, false, "/app", "app page");
  BOOST_TEST(*cache.find(rec, false, "") == "root page");
  BOOST_TEST(*cache.find(rec, true, "") == "lapsed page");
  BOOST_TEST(*cache.find(rec, false, "/app") == "app page");
  cache.put(rec, false, "", "root page, again");
  BOOST_TEST(*cache.find(rec, false, "") == "root page, again");
  BOOST_TEST(cache.size() == 3u);
}

BOOST_AUTO_TEST_CASE(it_is_bounded_and_holds_the_records_it_is_keyed_by) {
  RecordPageCache cache(4);
  auto first = record_named("First");
  const SignedIn* address = first.get();
  cache.put(first, false, "", "first");
  first.reset();  // the cache's reference keeps the object, so its address cannot name another record
  for (int i = 0; i < 3; ++i) cache.put(record_named("Other"), false, "", "other");
  BOOST_TEST(cache.size() == 4u);
  cache.put(record_named("Fifth"), false, "", "fifth");
  BOOST_TEST(cache.size() <= 4u);
  auto again = record_named("First");
  BOOST_TEST((again.get() != address || !cache.find(again, false, "")));
}

BOOST_AUTO_TEST_SUITE_END()

// Prefetcher: items in order, errors delivered as their item, one ahead at most, a safe stop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "prefetch.hpp"

using stam::Prefetcher;

TEST(Prefetcher, HandsOutItemsInOrder) {
  Prefetcher<std::string> p(5, [](size_t i) { return "item " + std::to_string(i); });
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(p.next(), "item " + std::to_string(i));
  EXPECT_THROW(p.next(), std::out_of_range);
}

TEST(Prefetcher, OrderHoldsWhenLaterItemsAreFaster) {
  // Item 0 is the slowest: it must still come first.
  Prefetcher<size_t> p(3, [](size_t i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(i == 0 ? 50 : 0));
    return i * 10;
  });
  EXPECT_EQ(p.next(), 0u);
  EXPECT_EQ(p.next(), 10u);
  EXPECT_EQ(p.next(), 20u);
}

TEST(Prefetcher, AnExceptionBecomesThatItemsErrorAndTheOthersStillCome) {
  Prefetcher<int> p(4, [](size_t i) {
    if (i == 1) throw std::invalid_argument("bad input 1");
    if (i == 2) throw 42;  // not a std::exception: still delivered as item 2's error
    return static_cast<int>(i);
  });
  EXPECT_EQ(p.next(), 0);
  try {
    p.next();
    ADD_FAILURE() << "item 1 must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "bad input 1");
  }
  EXPECT_THROW(p.next(), int);
  EXPECT_EQ(p.next(), 3);
}

TEST(Prefetcher, ProducesTheFirstItemAtOnceAndStaysOneAhead) {
  std::atomic<size_t> started{0};
  Prefetcher<size_t> p(4, [&](size_t i) {
    ++started;
    return i;
  });
  // Item 0 is produced before anyone asks, but nothing further until it is taken.
  for (int k = 0; k < 200 && started < 1; ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(started, 1u);
  EXPECT_EQ(p.next(), 0u);
  // Taking item 0 lets exactly item 1 start, while the caller "works" on item 0.
  for (int k = 0; k < 200 && started < 2; ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(started, 2u);
  EXPECT_EQ(p.next(), 1u);
}

TEST(Prefetcher, DestructionWhileProducingWaitsForThatCallAndStartsNoOther) {
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<size_t> calls{0}, finished{0};
  auto p = std::make_unique<Prefetcher<size_t>>(3, [&](size_t i) {
    ++calls;
    if (i == 0) {
      entered.set_value();
      released.wait();
    }
    ++finished;
    return i;
  });
  entered.get_future().wait();  // produce(0) is under way
  auto destroyed = std::async(std::launch::async, [&] { p.reset(); });
  EXPECT_EQ(destroyed.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout)
      << "the destructor must wait for the running produce() call";
  release.set_value();
  ASSERT_EQ(destroyed.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(calls, 1u) << "no produce() call may start once destruction began";
  EXPECT_EQ(finished, 1u);
}

TEST(Prefetcher, DestructionBeforeAnythingIsTakenOrAfterAllIsDone) {
  {
    Prefetcher<int> untouched(3, [](size_t i) { return static_cast<int>(i); });
  }
  Prefetcher<int> none(0, [](size_t) -> int { throw std::logic_error("never called"); });
  EXPECT_THROW(none.next(), std::out_of_range);
  Prefetcher<int> done(1, [](size_t) { return 7; });
  EXPECT_EQ(done.next(), 7);
}

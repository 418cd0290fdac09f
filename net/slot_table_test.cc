#include "net/slot_table.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace ringmq::net {
namespace {

struct Item {
  Item(uint32_t slot, uint32_t generation, int value)
      : slot(slot), generation(generation), value(value) {}
  uint32_t slot;
  uint32_t generation;
  int value;
};

Item* AddItem(SlotTable<Item>& t, int value) {
  return t.Add([value](uint32_t slot, uint32_t generation) {
    return std::make_unique<Item>(slot, generation, value);
  });
}

TEST(SlotTable, AStaleGenerationFindsNothingWhenTheSlotIsReused) {
  SlotTable<Item> t;
  Item* a = AddItem(t, 1);
  const uint32_t slot = a->slot, gen = a->generation;
  EXPECT_NE(gen, 0u);
  EXPECT_EQ(t.Find(slot, gen), a);
  t.Remove(slot);
  EXPECT_EQ(t.Find(slot, gen), nullptr);
  Item* b = AddItem(t, 2);
  EXPECT_EQ(b->slot, slot);  // the slot is reused...
  EXPECT_NE(b->generation, gen);
  EXPECT_EQ(t.Find(slot, gen), nullptr);  // ...and a late completion of `a` finds nothing
  EXPECT_EQ(t.Find(slot, b->generation), b);
  EXPECT_EQ(t.Find(slot + 5, b->generation), nullptr);
  EXPECT_EQ(t.live(), 1u);
}

TEST(SlotTable, DirtyEntriesAreDrainedOnceInOrderSkippingRemovedOnes) {
  SlotTable<Item> t;
  std::vector<Item*> items;
  items.reserve(4);
  for (int i = 0; i < 4; ++i) items.push_back(AddItem(t, i));
  t.MarkDirty(items[2]->slot);
  t.MarkDirty(items[0]->slot);
  t.MarkDirty(items[2]->slot);  // once
  t.MarkDirty(items[3]->slot);
  t.MarkDirty(items[1]->slot);
  t.Remove(items[3]->slot);
  std::vector<int> seen;
  t.DrainDirty([&](Item& it) {
    seen.push_back(it.value);
    if (it.value == 0) t.MarkDirty(items[2]->slot);  // marked again while draining: visited again
    if (it.value == 2 && seen.size() == 1) t.Remove(items[1]->slot);
  });
  EXPECT_EQ(seen, (std::vector<int>{2, 0, 2}));
  seen.clear();
  t.DrainDirty([&](Item& it) { seen.push_back(it.value); });
  EXPECT_TRUE(seen.empty());
}

TEST(SlotTable, ForEachVisitsLiveEntriesAndToleratesRemoval) {
  SlotTable<Item> t;
  for (int i = 0; i < 5; ++i) AddItem(t, i);
  t.Remove(1);
  std::vector<int> seen;
  t.ForEach([&](Item& it) {
    seen.push_back(it.value);
    if (it.value == 2) t.Remove(3);  // removing one not reached yet: it is not visited
  });
  EXPECT_EQ(seen, (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(t.live(), 3u);
}

}  // namespace
}  // namespace ringmq::net

// NameTable interning and the per-thread cache of dynamic zone names.

#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/source_location.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace name_table_test {
namespace {

// prefix + number by appending: GCC 12's -Wrestrict misfires at -O3 on
// "literal" + std::string, which inserts at the front.
std::string numbered(const char* prefix, int number) {
    std::string text = prefix;
    text += std::to_string(number);
    return text;
}

using pycroscope::LocationKind;
using pycroscope::NameTable;
using pycroscope::SourceLocation;

TEST(NameTable, SameKeySamePointer) {
    NameTable table;
    const SourceLocation* a = table.intern(LocationKind::python_function, "f", "mod.f", "mod.py", 10);
    const SourceLocation* b = table.intern(LocationKind::python_function, "f", "mod.f", "mod.py", 10);
    EXPECT_EQ(a, b);
    EXPECT_EQ(table.size(), 1u);
    EXPECT_STREQ(a->name, "f");
    EXPECT_STREQ(a->function, "mod.f");
    EXPECT_STREQ(a->file, "mod.py");
    EXPECT_EQ(a->line, 10u);
    EXPECT_EQ(a->kind, LocationKind::python_function);
}

TEST(NameTable, EveryPartOfTheKeyCounts) {
    NameTable table;
    std::set<const SourceLocation*> seen;
    seen.insert(table.intern(LocationKind::python_function, "f", "mod.f", "mod.py", 10));
    seen.insert(table.intern(LocationKind::c_function, "f", "mod.f", "mod.py", 10));    // kind
    seen.insert(table.intern(LocationKind::python_function, "g", "mod.f", "mod.py", 10)); // name
    seen.insert(table.intern(LocationKind::python_function, "f", "mod.g", "mod.py", 10)); // function
    seen.insert(table.intern(LocationKind::python_function, "f", "mod.f", "other.py", 10)); // file
    seen.insert(table.intern(LocationKind::python_function, "f", "mod.f", "mod.py", 11)); // line
    // Parts are separated: moving a character across a boundary is a new key.
    seen.insert(table.intern(LocationKind::python_function, "fm", "od.f", "mod.py", 10));
    seen.insert(table.intern(LocationKind::python_function, "f", "mod.f", "mod.py1", 0));
    EXPECT_EQ(seen.size(), 8u);
    EXPECT_EQ(table.size(), 8u);
}

TEST(NameTable, DefaultsAndDisplayName) {
    NameTable table;
    const SourceLocation* m = table.intern(LocationKind::mark, "checkpoint");
    EXPECT_STREQ(m->name, "checkpoint");
    EXPECT_STREQ(m->function, "checkpoint"); // function defaults to the name
    EXPECT_STREQ(m->file, "");
    EXPECT_EQ(m->line, 0u);
    EXPECT_STREQ(m->display_name(), "checkpoint");

    constexpr SourceLocation unnamed{nullptr, "enclosing", "f.cpp", 1, LocationKind::native_zone};
    EXPECT_STREQ(unnamed.display_name(), "enclosing");
}

TEST(NameTable, NamesOutliveTheirSourceStrings) {
    NameTable table;
    std::vector<const SourceLocation*> locations;
    for (int i = 0; i < 2000; ++i) {
        std::string name = "name-" + std::to_string(i); // destroyed after the call
        std::string file = "file-" + std::to_string(i % 7) + ".py";
        locations.push_back(table.intern(LocationKind::dynamic_zone, name, {}, file, static_cast<std::uint32_t>(i)));
    }
    // Thousands of later insertions moved neither the records nor the strings.
    for (int i = 0; i < 2000; ++i) {
        ASSERT_EQ(std::string(locations[i]->name), "name-" + std::to_string(i));
        ASSERT_EQ(std::string(locations[i]->file), "file-" + std::to_string(i % 7) + ".py");
        ASSERT_EQ(locations[i]->line, static_cast<std::uint32_t>(i));
        ASSERT_EQ(table.intern(LocationKind::dynamic_zone, "name-" + std::to_string(i), {},
                               "file-" + std::to_string(i % 7) + ".py", static_cast<std::uint32_t>(i)),
                  locations[i]);
    }
    EXPECT_EQ(table.size(), 2000u);
}

TEST(NameTable, ConcurrentInterningAgrees) {
    NameTable table;
    constexpr int threads = 4, names = 500;
    std::vector<std::vector<const SourceLocation*>> results(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < names; ++i) {
                results[t].push_back(table.intern(LocationKind::mark, numbered("m", i)));
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    EXPECT_EQ(table.size(), static_cast<std::size_t>(names));
    for (int t = 1; t < threads; ++t) {
        EXPECT_EQ(results[t], results[0]);
    }
}

TEST(NameTable, ProcessTableIsASingleton) {
    EXPECT_EQ(&pycroscope::names(), &pycroscope::names());
    const SourceLocation* a = pycroscope::names().intern(LocationKind::counter, "name_table_test.counter");
    EXPECT_EQ(pycroscope::names().intern(LocationKind::counter, "name_table_test.counter"), a);
}

constexpr SourceLocation site_a{"<dynamic>", "fa", "a.cpp", 10, LocationKind::dynamic_zone};
constexpr SourceLocation site_b{"<dynamic>", "fb", "b.cpp", 20, LocationKind::dynamic_zone};

TEST(NameTable, InternZoneNameCachesPerSiteAndName) {
    const SourceLocation* x = pycroscope::intern_zone_name(&site_a, "x");
    EXPECT_EQ(pycroscope::intern_zone_name(&site_a, "x"), x); // repeat: same pointer
    EXPECT_EQ(pycroscope::intern_zone_name(&site_a, std::string("x")), x);
    const SourceLocation* y = pycroscope::intern_zone_name(&site_a, "y");
    EXPECT_NE(y, x); // different name
    const SourceLocation* bx = pycroscope::intern_zone_name(&site_b, "x");
    EXPECT_NE(bx, x); // different site
    EXPECT_EQ(pycroscope::intern_zone_name(&site_a, "x"), x);
    EXPECT_EQ(pycroscope::intern_zone_name(&site_b, "x"), bx);

    // The interned location takes the name from the call and the rest from the site.
    EXPECT_STREQ(x->name, "x");
    EXPECT_STREQ(x->function, "fa");
    EXPECT_STREQ(x->file, "a.cpp");
    EXPECT_EQ(x->line, 10u);
    EXPECT_EQ(x->kind, LocationKind::dynamic_zone);
    EXPECT_STREQ(bx->function, "fb");
    EXPECT_EQ(bx->line, 20u);
}

TEST(NameTable, InternZoneNameManyNamesThroughTheCache) {
    // More names than cache entries: collisions must fall back to the table
    // and still return the one interned location per (site, name).
    std::vector<const SourceLocation*> first;
    for (int i = 0; i < 1000; ++i) {
        first.push_back(pycroscope::intern_zone_name(&site_a, numbered("n", i)));
    }
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 1000; ++i) {
            const std::string name = numbered("n", i);
            const SourceLocation* again = pycroscope::intern_zone_name(&site_a, name);
            ASSERT_EQ(again, first[i]) << name;
            ASSERT_EQ(std::string(again->name), name);
        }
    }
    EXPECT_EQ(std::set<const SourceLocation*>(first.begin(), first.end()).size(), 1000u);
}

TEST(NameTable, InternZoneNameAgreesAcrossThreads) {
    const SourceLocation* here = pycroscope::intern_zone_name(&site_b, "shared");
    const SourceLocation* there = nullptr;
    std::thread([&] { there = pycroscope::intern_zone_name(&site_b, "shared"); }).join();
    EXPECT_EQ(here, there); // each thread has its own cache, one table
}

} // namespace
} // namespace name_table_test

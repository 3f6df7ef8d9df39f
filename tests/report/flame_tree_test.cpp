#include "pycroscope/report/flame_tree.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using pycroscope::report::FlameTree;
using pycroscope::report::JsonValue;

namespace {

// name path ("all;a;b") -> value, rebuilt from the flat JSON form.
std::map<std::string, double> paths_of(const JsonValue& json) {
    std::map<std::string, double> out;
    const auto& names = json.find("names")->items();
    const auto& name = json.find("name")->items();
    const auto& value = json.find("value")->items();
    const auto& parent = json.find("parent")->items();
    std::vector<std::string> path(name.size());
    for (std::size_t i = 0; i < name.size(); ++i) {
        const long p = static_cast<long>(parent[i].as_double());
        EXPECT_LT(p, static_cast<long>(i)) << "a parent comes before its children";
        const std::string& label = names.at(static_cast<std::size_t>(name[i].as_double())).text();
        path[i] = p < 0 ? label : path[static_cast<std::size_t>(p)] + ";" + label;
        out[path[i]] += value[i].as_double();
    }
    return out;
}

} // namespace

TEST(FlameTree, MergesStacksIntoInclusiveTotals) {
    const FlameTree tree = FlameTree::from_text("T;a;b 5\nT;a;c 3\nT;a 2\nU;a;b 7\n\n");
    EXPECT_EQ(tree.total(), 17u);
    EXPECT_EQ(tree.lines(), 4u);
    const auto paths = paths_of(tree.to_json());
    EXPECT_EQ(paths.at("all"), 17);
    EXPECT_EQ(paths.at("all;T"), 10);
    EXPECT_EQ(paths.at("all;T;a"), 10);
    EXPECT_EQ(paths.at("all;T;a;b"), 5);
    EXPECT_EQ(paths.at("all;T;a;c"), 3);
    EXPECT_EQ(paths.at("all;U;a;b"), 7);
    EXPECT_EQ(paths.size(), 8u);
}

TEST(FlameTree, CountsMalformedLinesAndKeepsTheRest) {
    const FlameTree tree = FlameTree::from_text("a;b 10\nno weight\na;b x12\na;c 99999999999999999999999\na;d 4\r\n");
    EXPECT_EQ(tree.malformed_lines(), 3u);
    EXPECT_EQ(tree.total(), 14u);
}

TEST(FlameTree, NamesWithSpacesKeepEverythingBeforeTheLastSpace) {
    const auto paths = paths_of(FlameTree::from_text("T;import json decoder;f <b> 3\n").to_json());
    EXPECT_EQ(paths.at("all;T;import json decoder;f <b>"), 3);
}

TEST(FlameTree, PruningKeepsTheHeaviestNodesAndMovesTheRestIntoOther) {
    std::string text;
    for (int i = 0; i < 100; ++i) {
        text += "T;hot;leaf" + std::to_string(i) + " 1\n";
    }
    text += "T;hot;big 1000\n";
    FlameTree tree = FlameTree::from_text(text);
    EXPECT_EQ(tree.node_count(), 104u); // all, T, hot, big, 100 leaves
    tree.prune(5);
    EXPECT_EQ(tree.pruned_nodes(), 99u);
    const auto paths = paths_of(tree.to_json());
    EXPECT_EQ(paths.at("all"), 1100);
    EXPECT_EQ(paths.at("all;T;hot"), 1100);
    EXPECT_EQ(paths.at("all;T;hot;big"), 1000);
    // The one leaf kept (the 5th heaviest node, first by creation) and "[other]" sum to the rest.
    EXPECT_EQ(paths.at("all;T;hot;leaf0"), 1);
    EXPECT_EQ(paths.at("all;T;hot;[other]"), 99);
    EXPECT_EQ(paths.size(), 6u);
}

TEST(FlameTree, ReadsFilesLongerThanOneReadBuffer) {
    const auto dir = report_test::work_dir();
    std::string text;
    for (int i = 0; i < 60000; ++i) {
        text += "MainThread;module;function_with_a_long_name_" + std::to_string(i % 500) + " 3\n";
    }
    report_test::write_text(dir / "stacks.folded", text);
    const FlameTree tree = FlameTree::from_file((dir / "stacks.folded").string());
    EXPECT_EQ(tree.lines(), 60000u);
    EXPECT_EQ(tree.total(), 180000u);
    EXPECT_EQ(tree.node_count(), 503u);
    EXPECT_THROW(FlameTree::from_file((dir / "missing.folded").string()), pycroscope::report::ReportError);
}

// Schema compatibility: every frozen released version and the current schema
// load into one capnp::SchemaLoader (same node ids), which rejects renumbered,
// retyped or removed fields. A deliberately incompatible fixture proves the
// check can fail, and names the field.
#include <capnp/schema-loader.h>
#include <capnp/schema-parser.h>
#include <gtest/gtest.h>
#include <kj/filesystem.h>

#include <iostream>
#include <string>
#include <vector>

namespace orderflow {
namespace {

// Loads `schema` and everything under it (nested declarations, groups and
// unions of structs) into `loader`.
void LoadTree(capnp::SchemaLoader& loader, capnp::Schema schema) {
  loader.load(schema.getProto());
  if (schema.getProto().isStruct()) {
    for (auto field : schema.asStruct().getFields()) {
      if (field.getProto().isGroup()) LoadTree(loader, field.getType().asStruct());
    }
  }
}

// Parses `files` of one version directory with one parser and one view of the
// filesystem (so shared imports are the same file) and loads every node.
void LoadVersion(capnp::SchemaLoader& loader, const std::string& dir, const std::vector<std::string>& files) {
  capnp::SchemaParser parser;  // one per version: the versions' copies share file ids
  auto fs = kj::newDiskFilesystem();
  auto base = fs->getRoot().openSubdir(kj::Path::parse(dir.substr(1)));
  auto include = fs->getRoot().openSubdir(kj::Path::parse("usr/include"));
  const kj::ReadableDirectory* imports[] = {include.get()};
  for (const auto& file : files) {
    capnp::ParsedSchema parsed = parser.parseFromDirectory(*base, kj::Path::parse(file), imports);
    for (auto nested : parsed.getAllNested()) LoadTree(loader, nested);
  }
}

// Returns "" if `versions` (oldest first) load as compatible, else the loader's message.
std::string CheckCompatible(const std::vector<std::string>& versions, const std::vector<std::string>& files) {
  capnp::SchemaLoader loader;
  try {
    for (const auto& dir : versions) LoadVersion(loader, dir, files);
  } catch (const kj::Exception& e) {
    return kj::str(e).cStr();
  }
  return "";
}

const std::string kRoot = ORDERFLOW_SOURCE_DIR;

TEST(SchemaCompatibilityTest, EveryFrozenVersionLoadsWithTheCurrentSchema) {
  EXPECT_EQ(CheckCompatible({kRoot + "/schemas/frozen/v1", kRoot + "/schemas"}, {"events.capnp", "projections.capnp"}),
            "");
}

TEST(SchemaCompatibilityTest, RetypedFieldIsRejectedNamingTheField) {
  std::string error = CheckCompatible({kRoot + "/schemas/frozen/v1", kRoot + "/tests/fixtures/incompatible"},
                                      {"events.capnp"});
  ASSERT_NE(error, "") << "the incompatible fixture was accepted";
  std::cout << "rejected as expected: " << error << std::endl;
  EXPECT_NE(error.find("quantity"), std::string::npos) << error;
}

}  // namespace
}  // namespace orderflow

// A directory under $TMPDIR removed (recursively) when the object dies.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace orderflow::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "orderflow-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  // ORDERFLOW_KEEP_TEST_DIRS=1 keeps them (logs, data) for a post-mortem.
  ~TempDir() {
    if (const char* keep = std::getenv("ORDERFLOW_KEEP_TEST_DIRS"); keep != nullptr && *keep == '1') return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace orderflow::testing

#include "projections/snapshot.h"

#include <capnp/message.h>
#include <capnp/schema.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "domain/hex.h"
#include "schemas/events.capnp.h"
#include "schemas/projections.capnp.h"

namespace orderflow::projections {
namespace fs = std::filesystem;
namespace {

void CollectNodes(capnp::Schema schema, std::set<uint64_t>& seen, std::vector<capnp::Schema>& out) {
  if (!seen.insert(schema.getProto().getId()).second) return;
  out.push_back(schema);
  if (!schema.getProto().isStruct()) return;
  for (auto field : schema.asStruct().getFields()) {
    capnp::Type type = field.getType();
    while (type.isList()) type = type.asList().getElementType();
    if (type.isStruct()) CollectNodes(type.asStruct(), seen, out);
    if (type.isEnum()) CollectNodes(type.asEnum(), seen, out);
  }
}

nlohmann::json ToJson(const SnapshotManifest& m) {
  nlohmann::json offsets = nlohmann::json::object();
  for (const auto& [tp, off] : m.offsets) offsets[tp.topic + "/" + std::to_string(tp.partition)] = off;
  return {{"name", m.name},
          {"created_at_ms", m.created_at_ms},
          {"offsets", offsets},
          {"schema_fingerprint", m.schema_fingerprint},
          {"projection_version", m.projection_version},
          {"digest", m.digest},
          {"method", m.method},
          {"orders", m.orders},
          {"orders_filter", m.orders_filter}};
}

Result<SnapshotManifest> ReadManifest(const fs::path& dir) {
  std::ifstream in(dir / "manifest.json");
  if (!in) return Status::NotFound("snapshot " + dir.string() + " has no manifest.json");
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    SnapshotManifest m;
    m.name = j.at("name").get<std::string>();
    m.created_at_ms = j.at("created_at_ms").get<int64_t>();
    for (const auto& [key, value] : j.at("offsets").items()) {
      auto slash = key.rfind('/');
      if (slash == std::string::npos) return Status::Corruption("bad offset key " + key + " in " + dir.string());
      m.offsets[{key.substr(0, slash), std::stoi(key.substr(slash + 1))}] = value.get<int64_t>();
    }
    m.schema_fingerprint = j.at("schema_fingerprint").get<std::string>();
    m.projection_version = j.at("projection_version").get<uint32_t>();
    m.digest = j.at("digest").get<std::string>();
    m.method = j.value("method", "");
    m.orders = j.value("orders", uint64_t{0});
    m.orders_filter = j.value("orders_filter", "");
    return m;
  } catch (const std::exception& e) {
    return Status::Corruption("manifest of snapshot " + dir.string() + ": " + e.what());
  }
}

constexpr char kOrdersFilterFile[] = "orders.filter";

std::string Xxh3Hex(std::string_view bytes) {
  const uint64_t h = XXH3_64bits(bytes.data(), bytes.size());
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 100 || name.find('/') != std::string::npos || name[0] == '.') {
    return Status::InvalidArgument("snapshot name '" + name + "' must be 1-100 characters, no '/' or leading '.'");
  }
  return Status::Ok();
}

}  // namespace

std::string SchemaFingerprint() {
  std::set<uint64_t> seen;
  std::vector<capnp::Schema> nodes;
  CollectNodes(capnp::Schema::from<schema::Envelope>(), seen, nodes);
  CollectNodes(capnp::Schema::from<schema::OrderRecord>(), seen, nodes);
  CollectNodes(capnp::Schema::from<schema::HistoryRecord>(), seen, nodes);
  CollectNodes(capnp::Schema::from<schema::RejectedRecord>(), seen, nodes);
  std::sort(nodes.begin(), nodes.end(),
            [](const capnp::Schema& a, const capnp::Schema& b) { return a.getProto().getId() < b.getProto().getId(); });
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  for (const auto& node : nodes) {
    auto words = capnp::canonicalize(node.getProto());
    auto bytes = words.asBytes();
    EVP_DigestUpdate(ctx.get(), bytes.begin(), bytes.size());
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return domain::HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

Result<SnapshotManifest> CreateSnapshot(const std::string& data_dir, const std::string& snapshots_dir,
                                        const std::string& name, int64_t now_ms) {
  ORDERFLOW_RETURN_IF_ERROR(CheckName(name));
  const fs::path final_dir = fs::path(snapshots_dir) / name;
  std::error_code ec;
  if (!fs::exists(fs::path(data_dir) / "CURRENT")) {
    return Status::NotFound("no orderflow store in " + data_dir + " to snapshot");
  }
  if (fs::exists(final_dir, ec)) {
    return Status::AlreadyExists("snapshot " + name + " already exists in " + snapshots_dir);
  }
  // Built in a temporary directory and renamed into place once complete, so a
  // failure never leaves a half snapshot behind under the name.
  const fs::path dir = fs::path(snapshots_dir) / (".tmp-" + name);
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return Status::InvalidArgument("cannot create " + dir.string() + ": " + ec.message());

  SnapshotManifest m;
  m.name = name;
  m.created_at_ms = now_ms;
  {
    // Checkpoint when this process can open the store; a consistent copy
    // through a read-only view when a running service holds it.
    auto store = ProjectionStore::Open(data_dir, {});
    Status made;
    if (store.ok()) {
      m.method = "checkpoint";
      // A store a replay just wrote holds its orders in a pile of files: one
      // sorted run makes the restore's lookups of new orders cheap.
      // It needs free space about the family's size: without it, the
      // snapshot is still taken (hard links cost none), as written.
      auto compacted = (*store)->CompactOrders();
      if (!compacted.ok()) {
        spdlog::warn("snapshot {}: orders left as written ({}); a restore from it looks new orders up more slowly",
                     name, compacted.status().ToString());
      } else if (*compacted > 0) {
        spdlog::info("snapshot {}: merged the orders' {} level-0 files into one sorted run first", name, *compacted);
      }
      made = (*store)->CheckpointTo((dir / "db").string());
    } else if (store.status().code() == StatusCode::kInUse) {
      auto view = ProjectionStore::Open(data_dir, {.read_only = true});
      if (!view.ok()) {
        made = view.status();
      } else {
        m.method = "copy";
        made = (*view)->CopyTo((dir / "db").string());
      }
    } else {
      made = store.status();
    }
    if (!made.ok()) {
      fs::remove_all(dir, ec);
      return made;
    }
  }
  auto version = StoredProjectionVersion((dir / "db").string());
  if (!version.ok()) return version.status();
  m.projection_version = version->value_or(kProjectionVersion);
  auto snap = ProjectionStore::Open((dir / "db").string(), {.read_only = true});
  if (!snap.ok()) return snap.status();
  auto offsets = (*snap)->GetOffsets();
  if (!offsets.ok()) return offsets.status();
  m.offsets = std::move(offsets).value();
  auto digest = (*snap)->Digest();
  if (!digest.ok()) return digest.status();
  m.digest = std::move(digest).value();
  auto counts = (*snap)->CountByStatus();
  if (counts.ok()) {
    for (const auto& [status, n] : *counts) m.orders += n;
  }
  m.schema_fingerprint = SchemaFingerprint();
  auto filter = (*snap)->OrdersFilter();
  if (!filter.ok()) return filter.status();
  snap->reset();
  {
    std::ofstream out(dir / kOrdersFilterFile, std::ios::binary);
    out.write(filter->data(), static_cast<std::streamsize>(filter->size()));
    out.close();
    if (!out) return Status::Internal("cannot write " + (dir / kOrdersFilterFile).string());
    m.orders_filter = Xxh3Hex(*filter);
  }
  {
    std::ofstream out(dir / "manifest.json");
    out << ToJson(m).dump(2) << "\n";
    out.close();
    if (!out) return Status::Internal("cannot write " + (dir / "manifest.json").string());
  }
  fs::rename(dir, final_dir, ec);
  if (ec) return Status::Internal("cannot move the snapshot into " + final_dir.string() + ": " + ec.message());
  return m;
}

Result<std::vector<SnapshotManifest>> ListSnapshots(const std::string& snapshots_dir) {
  std::vector<SnapshotManifest> out;
  std::error_code ec;
  if (!fs::exists(snapshots_dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(snapshots_dir, ec)) {
    if (!entry.is_directory()) continue;
    auto m = ReadManifest(entry.path());
    if (m.ok()) out.push_back(std::move(m).value());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created_at_ms < b.created_at_ms; });
  return out;
}

Status DeleteSnapshot(const std::string& snapshots_dir, const std::string& name) {
  ORDERFLOW_RETURN_IF_ERROR(CheckName(name));
  const fs::path dir = fs::path(snapshots_dir) / name;
  std::error_code ec;
  if (!fs::exists(dir / "manifest.json", ec)) return Status::NotFound("no snapshot " + name + " in " + snapshots_dir);
  fs::remove_all(dir, ec);
  if (ec) return Status::Internal("cannot remove " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

std::string DefaultSnapshotsDir(const std::string& data_dir) { return data_dir + "-snapshots"; }

Status CheckRestorable(const SnapshotManifest& m) {
  if (m.projection_version != kProjectionVersion) {
    return Status::FailedPrecondition("snapshot " + m.name + " has projection version " +
                                      std::to_string(m.projection_version) + ", this build needs " +
                                      std::to_string(kProjectionVersion) + "; rebuild with `orderflow replay`");
  }
  if (m.schema_fingerprint != SchemaFingerprint()) {
    return Status::FailedPrecondition("snapshot " + m.name + " was written with another schema (fingerprint " +
                                      m.schema_fingerprint.substr(0, 12) + ", this build " +
                                      SchemaFingerprint().substr(0, 12) + "); rebuild with `orderflow replay`");
  }
  return Status::Ok();
}

std::string ReadOrdersFilter(const std::string& snapshots_dir, const std::string& name, const SnapshotManifest& m) {
  if (m.orders_filter.empty()) return "";
  const fs::path path = fs::path(snapshots_dir) / name / kOrdersFilterFile;
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (Xxh3Hex(bytes) != m.orders_filter) {  // also a short or failed read
    spdlog::warn("snapshot {}: {} is missing or does not match its manifest; the tail asks the store about every "
                 "new order (slower, same result)", name, path.string());
    return "";
  }
  return bytes;
}

Result<SnapshotManifest> RestoreSnapshot(const std::string& snapshots_dir, const std::string& name,
                                         const std::string& data_dir) {
  ORDERFLOW_RETURN_IF_ERROR(CheckName(name));
  const fs::path dir = fs::path(snapshots_dir) / name;
  auto m = ReadManifest(dir);
  if (!m.ok()) return m.status();
  ORDERFLOW_RETURN_IF_ERROR(CheckRestorable(*m));
  std::error_code ec;
  if (fs::exists(data_dir, ec) && !fs::is_empty(data_dir, ec)) {
    return Status::FailedPrecondition("data directory " + data_dir + " is not empty; restore into a new one");
  }
  fs::create_directories(data_dir, ec);
  // Table files are immutable: hard-link them (fast, no extra space; a copy if
  // linking fails, e.g. across file systems). Everything else is copied.
  for (const auto& entry : fs::directory_iterator(dir / "db", ec)) {
    const fs::path target = fs::path(data_dir) / entry.path().filename();
    std::error_code link_ec;
    if (entry.path().extension() == ".sst") fs::create_hard_link(entry.path(), target, link_ec);
    if (entry.path().extension() != ".sst" || link_ec) fs::copy_file(entry.path(), target, ec);
    if (ec) return Status::Internal("cannot copy snapshot into " + data_dir + ": " + ec.message());
  }
  if (ec) return Status::Internal("cannot read snapshot " + dir.string() + ": " + ec.message());
  return m;
}

}  // namespace orderflow::projections

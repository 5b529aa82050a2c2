// Snapshots of a projection store: a RocksDB checkpoint plus a manifest
// (offsets, schema fingerprint, projection version, digest, created-at).
//
// Layout: <snapshots>/<name>/db (the store), <snapshots>/<name>/manifest.json
// and <snapshots>/<name>/orders.filter (the ids of its orders, for a restore's
// tail: ReadOrdersFilter).
// A snapshot can be taken while a service holds the store: then it is a
// consistent copy made through a read-only view instead of a checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "domain/status.h"
#include "projections/store.h"

namespace orderflow::projections {

struct SnapshotManifest {
  std::string name;
  int64_t created_at_ms = 0;
  Offsets offsets;
  std::string schema_fingerprint;
  uint32_t projection_version = 0;
  std::string digest;
  std::string method;  // "checkpoint" or "copy"
  uint64_t orders = 0;
  // XXH3-64 (hex) of orders.filter; empty: the snapshot has none (older builds).
  std::string orders_filter;
};

// SHA-256 over the canonical Cap'n Proto nodes of the envelope and the stored
// records: changes whenever the schema this build reads and writes changes.
std::string SchemaFingerprint();

// Errors: kAlreadyExists for a taken name; the store's open errors.
Result<SnapshotManifest> CreateSnapshot(const std::string& data_dir, const std::string& snapshots_dir,
                                        const std::string& name, int64_t now_ms);
Result<std::vector<SnapshotManifest>> ListSnapshots(const std::string& snapshots_dir);
Status DeleteSnapshot(const std::string& snapshots_dir, const std::string& name);

// Where snapshots of the store in `data_dir` live unless told: <data_dir>-snapshots.
std::string DefaultSnapshotsDir(const std::string& data_dir);

// Ok when this build can restore `m`; kFailedPrecondition saying why not (its
// projection version or schema fingerprint differs from this build's).
Status CheckRestorable(const SnapshotManifest& m);

// The ids of the orders in snapshot `name` (SeenFilter bytes, seen_filter.h),
// as kept beside it; "" when it has none or the file does not match its
// manifest `m` (logged): then a restore's tail asks the store about every new order.
std::string ReadOrdersFilter(const std::string& snapshots_dir, const std::string& name, const SnapshotManifest& m);

// Copies snapshot `name` into `data_dir` (which must not exist or be empty).
// Refused (kFailedPrecondition, saying why) when its projection version or
// schema fingerprint differs from this build's.
Result<SnapshotManifest> RestoreSnapshot(const std::string& snapshots_dir, const std::string& name,
                                         const std::string& data_dir);

}  // namespace orderflow::projections

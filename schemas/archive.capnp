# Log records as archived: in the local archive of `orderflow up` (the
# embedded broker keeps no data across restarts) and in `orderflow log export`
# files. Enough to append each record again at the same partition and offset.
@0xbff846b02105a188;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("orderflow::schema");

struct ArchivedHeader {
  name @0 :Text;
  value @1 :Data;
}

struct ArchivedRecord {
  topic @0 :Text;
  partition @1 :Int32;
  offset @2 :Int64;
  timestampMs @3 :Int64;
  key @4 :Data;
  value @5 :Data;
  headers @6 :List(ArchivedHeader);
}

# The first message of an export file.
struct LogFileHeader {
  formatVersion @0 :UInt16;        # 1
  createdAtMs @1 :Int64;
  partitions @2 :List(TopicPartitions);
  struct TopicPartitions {
    topic @0 :Text;
    partitions @1 :Int32;
    records @2 :List(Int64);       # records per partition (each starts at offset 0)
  }
}

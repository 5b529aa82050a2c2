// jemalloc's settings for every orderflow process, read by jemalloc when it
// starts (before main). Linked only where jemalloc is (not under the
// sanitizers). MALLOC_CONF in the environment still overrides them.
//
// narenas:2. jemalloc's default is four arenas per CPU, and each thread that
// allocates is given one; an arena keeps the pages freed in it for ten seconds
// (dirty_decay_ms) before it returns them. A rebuild lays out and writes each
// window of state on threads of its own, so its garbage spread over eight
// arenas on two CPUs: the 4M-event replay peaked at 248-261 MiB, 186-199 MiB
// with two arenas, at the same CPU per event, and the lifecycle's CPU per order
// did not move (docs/benchmarks.md, "Two allocator arenas"). Tuned on the
// two-CPU machines orderflow is measured on: where many threads allocate at
// once on more CPUs, MALLOC_CONF=narenas:N gives them more.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's (jemalloc(3), "malloc_conf").
const char* malloc_conf = "narenas:2";
}

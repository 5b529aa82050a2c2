// ThreadSanitizer builds only. librdkafka (from Debian) creates its threads and
// takes its locks through C11 <threads.h> (thrd_create, mtx_lock, cnd_wait),
// which GCC 12's libtsan does not intercept: its threads would be unknown to
// TSan (which then crashes) and its locks invisible (false reports). These
// definitions in the executable take precedence over glibc's and forward to
// the pthread calls TSan does intercept. glibc implements the C11 types as
// the pthread ones (same size and layout), which is what makes the casts sound.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <new>

namespace {

struct Start {
  thrd_start_t func;
  void* arg;
};

void* Trampoline(void* p) {
  Start start = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

int FromErrno(int e) {
  if (e == 0) return thrd_success;
  if (e == ETIMEDOUT) return thrd_timedout;
  if (e == EBUSY) return thrd_busy;
  if (e == ENOMEM) return thrd_nomem;
  return thrd_error;
}

pthread_mutex_t* M(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* C(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t));
static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t));
static_assert(sizeof(thrd_t) == sizeof(pthread_t));

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = new (std::nothrow) Start{func, arg};
  if (start == nullptr) return thrd_nomem;
  int e = pthread_create(reinterpret_cast<pthread_t*>(thr), nullptr, Trampoline, start);
  if (e != 0) delete start;
  return FromErrno(e);
}

int thrd_join(thrd_t thr, int* res) {
  void* value = nullptr;
  int e = pthread_join(static_cast<pthread_t>(thr), &value);
  if (e == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return FromErrno(e);
}

int thrd_detach(thrd_t thr) { return FromErrno(pthread_detach(static_cast<pthread_t>(thr))); }

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int e = pthread_mutex_init(M(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return FromErrno(e);
}
int mtx_lock(mtx_t* m) { return FromErrno(pthread_mutex_lock(M(m))); }
int mtx_trylock(mtx_t* m) { return FromErrno(pthread_mutex_trylock(M(m))); }
int mtx_timedlock(mtx_t* m, const struct timespec* ts) { return FromErrno(pthread_mutex_timedlock(M(m), ts)); }
int mtx_unlock(mtx_t* m) { return FromErrno(pthread_mutex_unlock(M(m))); }
void mtx_destroy(mtx_t* m) { pthread_mutex_destroy(M(m)); }

int cnd_init(cnd_t* c) { return FromErrno(pthread_cond_init(C(c), nullptr)); }
int cnd_signal(cnd_t* c) { return FromErrno(pthread_cond_signal(C(c))); }
int cnd_broadcast(cnd_t* c) { return FromErrno(pthread_cond_broadcast(C(c))); }
int cnd_wait(cnd_t* c, mtx_t* m) { return FromErrno(pthread_cond_wait(C(c), M(m))); }
int cnd_timedwait(cnd_t* c, mtx_t* m, const struct timespec* ts) {
  return FromErrno(pthread_cond_timedwait(C(c), M(m), ts));
}
void cnd_destroy(cnd_t* c) { pthread_cond_destroy(C(c)); }

}  // extern "C"

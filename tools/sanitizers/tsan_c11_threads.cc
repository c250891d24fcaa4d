// Gives ThreadSanitizer the C11 threads that librdkafka runs on.
//
// librdkafka creates its threads with thrd_create and locks with mtx_*/cnd_* (C11 <threads.h>).
// GCC 12's TSan runtime intercepts the pthread functions but not these, and glibc implements them
// with internal calls that bypass the interceptors: TSan then never learns of librdkafka's
// threads (their first malloc crashes in TSan's allocator) nor sees their locks. Under
// --config=tsan every test links this file (//tools/sanitizers:tsan_interposers), whose
// definitions in the test binary take precedence over glibc's for librdkafka too; each does what
// glibc does, through the pthread function TSan intercepts.
#include <errno.h>
#include <pthread.h>

#include <cstdint>
#include <new>

namespace {

// glibc's C11 result codes (<threads.h>, which C++ cannot include).
constexpr int kThrdSuccess = 0;
constexpr int kThrdBusy = 1;
constexpr int kThrdError = 2;
constexpr int kThrdNomem = 3;
constexpr int kThrdTimedout = 4;
// mtx_init's types.
constexpr int kMtxRecursive = 1;

int FromPthread(int rc) {
  switch (rc) {
    case 0:
      return kThrdSuccess;
    case EBUSY:
      return kThrdBusy;
    case ENOMEM:
    case EAGAIN:
      return kThrdNomem;
    case ETIMEDOUT:
      return kThrdTimedout;
    default:
      return kThrdError;
  }
}

using ThrdStart = int (*)(void*);

struct Start {
  ThrdStart func;
  void* arg;
};

void* RunC11Thread(void* start_ptr) {
  const Start start = *static_cast<Start*>(start_ptr);
  delete static_cast<Start*>(start_ptr);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

}  // namespace

// glibc's mtx_t and cnd_t are pthread_mutex_t and pthread_cond_t in size and layout, and thrd_t
// is pthread_t.
extern "C" {

int thrd_create(pthread_t* thread, ThrdStart func, void* arg) {
  Start* start = new (std::nothrow) Start{func, arg};
  if (start == nullptr) return kThrdNomem;
  const int rc = pthread_create(thread, nullptr, RunC11Thread, start);
  if (rc != 0) delete start;
  return FromPthread(rc);
}

int thrd_join(pthread_t thread, int* result) {
  void* value = nullptr;
  const int rc = pthread_join(thread, &value);
  if (rc == 0 && result != nullptr) *result = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return FromPthread(rc);
}

int thrd_detach(pthread_t thread) { return FromPthread(pthread_detach(thread)); }

int mtx_init(pthread_mutex_t* mutex, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & kMtxRecursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  const int rc = pthread_mutex_init(mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return FromPthread(rc);
}

int mtx_lock(pthread_mutex_t* mutex) { return FromPthread(pthread_mutex_lock(mutex)); }
int mtx_trylock(pthread_mutex_t* mutex) { return FromPthread(pthread_mutex_trylock(mutex)); }
int mtx_timedlock(pthread_mutex_t* mutex, const struct timespec* deadline) {
  return FromPthread(pthread_mutex_timedlock(mutex, deadline));
}
int mtx_unlock(pthread_mutex_t* mutex) { return FromPthread(pthread_mutex_unlock(mutex)); }
void mtx_destroy(pthread_mutex_t* mutex) { pthread_mutex_destroy(mutex); }

int cnd_init(pthread_cond_t* cond) { return FromPthread(pthread_cond_init(cond, nullptr)); }
int cnd_signal(pthread_cond_t* cond) { return FromPthread(pthread_cond_signal(cond)); }
int cnd_broadcast(pthread_cond_t* cond) { return FromPthread(pthread_cond_broadcast(cond)); }
int cnd_wait(pthread_cond_t* cond, pthread_mutex_t* mutex) {
  return FromPthread(pthread_cond_wait(cond, mutex));
}
// C11 deadlines are TIME_UTC, pthread_cond_timedwait's default clock (CLOCK_REALTIME).
int cnd_timedwait(pthread_cond_t* cond, pthread_mutex_t* mutex, const struct timespec* deadline) {
  return FromPthread(pthread_cond_timedwait(cond, mutex, deadline));
}
void cnd_destroy(pthread_cond_t* cond) { pthread_cond_destroy(cond); }

}  // extern "C"

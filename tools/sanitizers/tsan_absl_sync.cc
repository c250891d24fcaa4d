// Tells ThreadSanitizer about abseil's synchronization, which it cannot see by itself.
//
// Tongka locks with absl::Mutex, absl::CondVar and absl::Notification. Debian's abseil is built
// without -fsanitize=thread, so their lock-free fast paths and futex waits are invisible to TSan,
// and every field guarded by an absl::Mutex would be reported as a race. This file, linked into
// every test under --config=tsan only (//tools/sanitizers:tsan_interposers, through
// //libs/testing:test_main), defines those member functions in the test binary itself, so calls
// from Tongka's code bind here first. Each forwards to abseil's own definition (found with
// dlsym(RTLD_NEXT)) and marks the happens-before edge TSan needs: a release on the mutex before
// it is given up, an acquire after it is taken. Calls made inside the system libraries themselves
// (gRPC's own locking) are not seen; tsan.supp covers what that leaves.
//
// The symbol names are abseil 20220623 as Debian builds it (inline namespace "debian3"); a
// missing one stops the test at its first use, naming it.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}

namespace {

template <typename Fn>
Fn Real(const char* symbol) {
  void* real = dlsym(RTLD_NEXT, symbol);
  if (real == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: abseil does not define %s\n", symbol);
    std::abort();
  }
  return reinterpret_cast<Fn>(real);
}

void Acquire(const void* sync) { __tsan_acquire(const_cast<void*>(sync)); }
void Release(const void* sync) { __tsan_release(const_cast<void*>(sync)); }

// abseil evaluates a condition inside its own code with the mutex held, in the waiting thread
// or in whichever thread unlocks, before or after the acquire that follows the call here: each
// condition passed on is wrapped so that its evaluation is a critical section of its own. The
// wrapper lives on the caller's stack and is written before the release that precedes the call,
// so the thread that evaluates it sees it.
struct Guarded {
  const absl::Condition* condition;
  const absl::Mutex* mutex;
};

bool EvalGuarded(void* guarded_ptr) {
  const Guarded* guarded = static_cast<const Guarded*>(guarded_ptr);
  Acquire(guarded->mutex);
  const bool met = guarded->condition->Eval();
  Release(guarded->mutex);
  return met;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex6UnlockEv");
  Release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  real(this, guarded_cond);
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  real(this, guarded_cond);
  Acquire(this);
}

// The LockWhen forms release before the call only to publish the condition's wrapper. The timed
// forms hold the mutex on return whatever they return.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  const bool met = real(this, guarded_cond, timeout);
  Acquire(this);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  const bool met = real(this, guarded_cond, deadline);
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  const bool met = real(this, guarded_cond, timeout);
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  const bool met = real(this, guarded_cond, deadline);
  Acquire(this);
  return met;
}

// Await and CondVar::Wait give the mutex up while they wait and take it back before returning.
void Mutex::Await(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  real(this, guarded_cond);
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  const bool met = real(this, guarded_cond, timeout);
  Acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Guarded guarded{&cond, this};
  const Condition guarded_cond(&EvalGuarded, &guarded);
  Release(this);
  const bool met = real(this, guarded_cond, deadline);
  Acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  static const auto real =
      Real<void (*)(CondVar*, Mutex*)>("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool timed_out = real(this, mu, timeout);
  Acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool timed_out = real(this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

// A Notification synchronizes on its flag: Notify releases it, a wait that sees it set acquires
// it. HasBeenNotified is inline: its acquire load of the flag, instrumented in Tongka's code,
// pairs with Notify's release of the same address.
static_assert(sizeof(Notification) == sizeof(Mutex) + sizeof(intptr_t),
              "absl::Notification is not {Mutex, atomic<bool>}: update tsan_absl_sync.cc");
static const void* NotifiedFlag(const Notification* n) {
  return reinterpret_cast<const char*>(n) + sizeof(Mutex);
}

void Notification::Notify() {
  static const auto real = Real<void (*)(Notification*)>("_ZN4absl7debian312Notification6NotifyEv");
  Release(NotifiedFlag(this));
  real(this);
}

void Notification::WaitForNotification() const {
  static const auto real =
      Real<void (*)(const Notification*)>("_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquire(NotifiedFlag(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, Duration)>(
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) Acquire(NotifiedFlag(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, Time)>(
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) Acquire(NotifiedFlag(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl

// Shared pieces of the strata addon: per-environment state, the error
// bridge into the JS classes of src/util/errors.ts, argument-check macros,
// natively owned memory areas and a scoped network-namespace switch.
//
// Argument contract: every number JS passes is read as a double and checked
// as an integer in an explicit int64 range before it is narrowed, and every
// bound on an array is compared overflow-free (`start <= len && n <= len -
// start`), so no value JS can make wraps a check. A value of the wrong type
// throws ArgumentTypeError (a TypeError, code ERR_STRATA_ARG_TYPE); a
// non-integer, NaN, infinite or out-of-range one ArgumentRangeError (a
// RangeError, code ERR_STRATA_ARG_RANGE).
//
// No C++ exceptions (NAPI_DISABLE_CPP_EXCEPTIONS): every failure throws a JS
// error and returns an empty value; callers check env.IsExceptionPending()
// only where they call back into JS.
#pragma once
#include <napi.h>
#include <uv.h>
#include <stdint.h>
#include <memory>
#include <set>
#include <string>

namespace strata {

class Closable {
 public:
  virtual ~Closable() = default;
  virtual void CloseNative() = 0;
};

struct AddonState {
  Napi::FunctionReference systemError;     // (syscall, errno, message)
  Napi::FunctionReference invalidArgument; // (message)
  Napi::FunctionReference unavailable;     // (feature, reason)
  Napi::FunctionReference argType;         // (message): a TypeError subclass
  Napi::FunctionReference argRange;        // (message): a RangeError subclass
  Napi::FunctionReference xskCtor;
  Napi::FunctionReference tapCtor;
  bool initialised = false;
  // Open sockets / fds, closed by the environment cleanup hook so a worker
  // or process exit never leaks a bound XSK or uv_poll.
  std::set<Closable *> open;
  // BPF map fds handed out by mapOpen(): mapClose() closes only these, so JS
  // cannot close an fd it does not own (stdin, libuv's, another socket).
  std::set<int> mapFds;
};

AddonState *State(Napi::Env env);

// Throw helpers: build the JS class passed at init() and throw it.
void ThrowSystem(Napi::Env env, const char *syscall, int err);
void ThrowSystemMsg(Napi::Env env, const char *syscall, int err, const std::string &msg);
void ThrowInvalid(Napi::Env env, const std::string &msg);
void ThrowUnavailable(Napi::Env env, const std::string &feature, const std::string &reason);

void ThrowArgType(Napi::Env env, const std::string &msg);
void ThrowArgRange(Napi::Env env, const std::string &msg);

// info[i] as an integer in [lo, hi], checked in double/int64 before any
// narrowing. False with a TypeError/RangeError pending otherwise. One N-API
// call, as the unchecked napi_get_value_uint32 it replaces.
bool ArgInt(const Napi::CallbackInfo &info, size_t i, const char *what, int64_t lo, int64_t hi, int64_t *out);

// Cold paths of the checks below: build the message and throw.
[[gnu::cold]] void ThrowNotInt(Napi::Env env, const char *fn, const char *what, bool isNumber, int64_t lo, int64_t hi);
[[gnu::cold]] void ThrowDescRange(Napi::Env env, const char *fn, int64_t pairs, int64_t start, int64_t n);

// v as an integer in [lo, hi], or false with a TypeError/RangeError pending.
// Compared as a double first (exact for the int64 ranges used here, which
// stay within 2**53; NaN fails), then narrowed, then checked to be whole.
// Inline: it is on every burst, and costs what the unchecked
// napi_get_value_uint32 it replaces did plus a few compares.
inline bool IntIn(Napi::Env env, napi_value v, const char *fn, const char *what, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (__builtin_expect(napi_get_value_double(env, v, &d) != napi_ok, 0)) { ThrowNotInt(env, fn, what, false, lo, hi); return false; }
  if (__builtin_expect(!(d >= (double)lo && d <= (double)hi), 0)) { ThrowNotInt(env, fn, what, true, lo, hi); return false; }
  const int64_t i = (int64_t)d;
  if (__builtin_expect((double)i != d, 0)) { ThrowNotInt(env, fn, what, true, lo, hi); return false; }
  *out = i;
  return true;
}

// Reads a Uint32Array argument; sets data/len (in elements).
bool GetU32Array(const Napi::Value &v, uint32_t **data, size_t *len);

// The burst arguments every rx/tx/alloc/free takes, checked once here:
// info[0] a Uint32Array of (offset, length) pairs; windowed: info[1] start,
// info[2] count (pairs desc[start .. start+count)); else info[1] count
// (pairs desc[0 .. count)). Sets the window's first pair and its count, or
// returns false with a TypeError/RangeError pending.
inline bool DescArg(const Napi::CallbackInfo &info, const char *fn, bool windowed, uint32_t **first, uint32_t *count) {
  Napi::Env env = info.Env();
  uint32_t *d;
  size_t dl;
  if (__builtin_expect(!GetU32Array(info[0], &d, &dl), 0)) {
    ThrowArgType(env, std::string(fn) + ": desc must be a Uint32Array");
    return false;
  }
  int64_t start = 0, n;
  if (windowed && !IntIn(env, info[1], fn, ": start", 0, UINT32_MAX, &start)) return false;
  if (!IntIn(env, info[windowed ? 2 : 1], fn, ": count", 0, UINT32_MAX, &n)) return false;
  // Overflow-free: start and n are below 2**32, pairs below 2**62.
  const int64_t pairs = (int64_t)(dl / 2);
  if (__builtin_expect(start > pairs || n > pairs - start, 0)) { ThrowDescRange(env, fn, pairs, start, n); return false; }
  *first = d + 2 * (size_t)start;
  *count = (uint32_t)n;
  return true;
}
#define DESC_WINDOW(first, count, fn) \
  uint32_t *first; uint32_t count; if (!::strata::DescArg(info, fn, true, &first, &count)) return Napi::Value()
#define DESC_PREFIX(first, count, fn) \
  uint32_t *first; uint32_t count; if (!::strata::DescArg(info, fn, false, &first, &count)) return Napi::Value()

#define ARG_INT(var, i, what, lo, hi) \
  int64_t var; if (!::strata::ArgInt(info, i, what, lo, hi, &var)) return Napi::Value()
#define CHECK_TYPE(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowArgType(env, msg); return Napi::Value(); } } while (0)
#define CHECK_TYPE_VOID(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowArgType(env, msg); return; } } while (0)
#define CHECK_RANGE(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowArgRange(env, msg); return Napi::Value(); } } while (0)
#define CHECK_RANGE_VOID(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowArgRange(env, msg); return; } } while (0)
// A getter or Proxy trap in an options object may have thrown: stop there.
#define CHECK_PENDING_VOID() \
  do { if (env.IsExceptionPending()) return; } while (0)
#define CHECK_PENDING() \
  do { if (env.IsExceptionPending()) return Napi::Value(); } while (0)

#define CHECK_ARG(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowInvalid(env, msg); return Napi::Value(); } } while (0)
#define CHECK_ARG_VOID(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowInvalid(env, msg); return; } } while (0)
#define THROW_SYS(syscall, err) \
  do { ::strata::ThrowSystem(env, syscall, err); return Napi::Value(); } while (0)

// Memory the native side reads and writes (a UMEM, a TAP frame pool),
// allocated and freed here and lent to JS as an external ArrayBuffer. It is
// unmapped only when both the native owner and every ArrayBuffer holding it
// are gone: if JS transfers or detaches its buffer, V8 moves the backing
// store (and with it our finalizer) to the new buffer, and the native side
// keeps writing into memory that is still mapped. A JS-owned buffer would
// be freed under us instead.
struct NativeArea {
  void *p;
  size_t size;
  int refs;
};
// mmap'ed, zeroed, refs = 1 (the native owner); nullptr with errno set.
NativeArea *MapArea(size_t size, bool populate);
void UnrefArea(NativeArea *a);
// An external ArrayBuffer over a (takes one more reference).
Napi::ArrayBuffer AreaBuffer(Napi::Env env, NativeArea *a);

// Reads a Uint8Array argument.
bool GetU8Array(const Napi::Value &v, uint8_t **data, size_t *len);

// Enters the network namespace at path (empty: stay) for this scope; the
// calling thread returns to its original namespace on destruction. setns()
// of a net namespace is per thread, so only this (the main) thread moves.
class NetnsScope {
 public:
  explicit NetnsScope(const std::string &path);
  ~NetnsScope();
  bool ok() const { return err_ == 0; }
  int err() const { return err_; }
 private:
  int orig_ = -1;
  int err_ = 0;
};

// Optional string property of an options object ("" when absent).
std::string OptString(const Napi::Object &o, const char *key);
// Optional integer property in [lo, hi] (dflt when undefined). False with a
// TypeError/RangeError pending for any other value: a 2**32 + 64 that would
// wrap to 64 in uint32 is refused, not narrowed.
bool OptInt(const Napi::Object &o, const char *key, int64_t lo, int64_t hi, int64_t dflt, int64_t *out);
bool OptBool(const Napi::Object &o, const char *key, bool dflt);

// Readiness through the libuv loop for one fd (an XSK or a TAP): a
// level-triggered uv_poll that calls a JS function once per readiness, not
// per packet. Owned by the wrapping object; Stop() is safe to repeat.
class FdPoll {
 public:
  // Starts watching fd (or just swaps the function when already started).
  // Returns false with a JS exception pending when uv_poll_init fails.
  bool Start(Napi::Env env, int fd, Napi::Function fn, const char *resource) {
    onReady_ = Napi::Persistent(fn);
    env_ = env;
    if (!ctx_) ctx_.reset(new Napi::AsyncContext(env, resource));
    if (poll_) return true;
    uv_loop_t *loop;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    int r = uv_poll_init(loop, poll_, fd);
    if (r) { delete poll_; poll_ = nullptr; ThrowSystemMsg(env, "uv_poll_init", -r, uv_strerror(r)); return false; }
    poll_->data = this;
    uv_poll_start(poll_, UV_READABLE, OnPoll);
    return true;
  }
  void Stop() {
    if (poll_) {
      poll_->data = nullptr;
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t *>(poll_), [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
      poll_ = nullptr;
    }
    if (!onReady_.IsEmpty()) onReady_.Reset();
  }
  bool active() const { return poll_ != nullptr; }
  // Readiness callbacks delivered so far.
  uint64_t events() const { return events_; }

 private:
  static void OnPoll(uv_poll_t *h, int, int) {
    FdPoll *self = static_cast<FdPoll *>(h->data);
    if (!self || self->onReady_.IsEmpty()) return;
    self->events_++;
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    self->onReady_.MakeCallback(env.Global(), {}, *self->ctx_);
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }
  uv_poll_t *poll_ = nullptr;
  napi_env env_ = nullptr;
  Napi::FunctionReference onReady_;
  std::unique_ptr<Napi::AsyncContext> ctx_;
  uint64_t events_ = 0;
};

Napi::Object InitXsk(Napi::Env env, Napi::Object exports);
Napi::Object InitTap(Napi::Env env, Napi::Object exports);
Napi::Object InitBpf(Napi::Env env, Napi::Object exports);

}  // namespace strata

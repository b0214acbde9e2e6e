// Shared pieces of the strata addon: per-environment state, the error
// bridge into the JS classes of src/util/errors.ts, argument-check macros
// and a scoped network-namespace switch.
//
// No C++ exceptions (NAPI_DISABLE_CPP_EXCEPTIONS): every failure throws a JS
// error and returns an empty value; callers check env.IsExceptionPending()
// only where they call back into JS.
#pragma once
#include <napi.h>
#include <uv.h>
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
  Napi::FunctionReference xskCtor;
  Napi::FunctionReference tapCtor;
  bool initialised = false;
  // Open sockets / fds, closed by the environment cleanup hook so a worker
  // or process exit never leaks a bound XSK or uv_poll.
  std::set<Closable *> open;
};

AddonState *State(Napi::Env env);

// Throw helpers: build the JS class passed at init() and throw it.
void ThrowSystem(Napi::Env env, const char *syscall, int err);
void ThrowSystemMsg(Napi::Env env, const char *syscall, int err, const std::string &msg);
void ThrowInvalid(Napi::Env env, const std::string &msg);
void ThrowUnavailable(Napi::Env env, const std::string &feature, const std::string &reason);

#define CHECK_ARG(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowInvalid(env, msg); return Napi::Value(); } } while (0)
#define CHECK_ARG_VOID(cond, msg) \
  do { if (!(cond)) { ::strata::ThrowInvalid(env, msg); return; } } while (0)
#define THROW_SYS(syscall, err) \
  do { ::strata::ThrowSystem(env, syscall, err); return Napi::Value(); } while (0)

// Reads a Uint32Array argument; sets data/len (in elements).
bool GetU32Array(const Napi::Value &v, uint32_t **data, size_t *len);
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
uint32_t OptU32(const Napi::Object &o, const char *key, uint32_t dflt);
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

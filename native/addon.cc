// Addon entry: init() receives the JS error classes (better-sqlite3 style),
// per-environment state lives in one struct with a cleanup hook.
#include "common.h"
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

namespace strata {

AddonState *State(Napi::Env env) { return env.GetInstanceData<AddonState>(); }

static Napi::Value Construct(Napi::Env env, Napi::FunctionReference &ctor, std::initializer_list<napi_value> args,
                             const std::string &fallback) {
  if (!ctor.IsEmpty()) return ctor.New(args);
  return Napi::Error::New(env, fallback).Value();
}

void ThrowSystemMsg(Napi::Env env, const char *syscall, int err, const std::string &msg) {
  AddonState *s = State(env);
  Napi::Value e = Construct(env, s->systemError,
                            {Napi::String::New(env, syscall), Napi::Number::New(env, err), Napi::String::New(env, msg)},
                            std::string(syscall) + ": " + msg);
  if (env.IsExceptionPending()) return;
  napi_throw(env, e);
}

void ThrowSystem(Napi::Env env, const char *syscall, int err) {
  if (err < 0) err = -err;
  ThrowSystemMsg(env, syscall, err, strerror(err));
}

void ThrowInvalid(Napi::Env env, const std::string &msg) {
  AddonState *s = State(env);
  Napi::Value e = Construct(env, s->invalidArgument, {Napi::String::New(env, msg)}, msg);
  if (env.IsExceptionPending()) return;
  napi_throw(env, e);
}

void ThrowUnavailable(Napi::Env env, const std::string &feature, const std::string &reason) {
  AddonState *s = State(env);
  Napi::Value e = Construct(env, s->unavailable, {Napi::String::New(env, feature), Napi::String::New(env, reason)},
                            feature + " unavailable: " + reason);
  if (env.IsExceptionPending()) return;
  napi_throw(env, e);
}

// One napi_get_typedarray_info call per array: it is on every burst call,
// and each extra type query walks V8's typed-array kinds again.
static bool GetTyped(const Napi::Value &v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(v.Env(), v, &type, len, data, &ab, &off) != napi_ok) return false;
  return type == want;
}

bool GetU32Array(const Napi::Value &v, uint32_t **data, size_t *len) {
  void *p;
  if (!GetTyped(v, napi_uint32_array, &p, len)) return false;
  *data = static_cast<uint32_t *>(p);
  return true;
}

bool GetU8Array(const Napi::Value &v, uint8_t **data, size_t *len) {
  void *p;
  if (!GetTyped(v, napi_uint8_array, &p, len)) return false;
  *data = static_cast<uint8_t *>(p);
  return true;
}

NetnsScope::NetnsScope(const std::string &path) {
  if (path.empty()) return;
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) { err_ = errno; return; }
  // A bare name is one made by `ip netns add` (a bind mount in /run/netns).
  std::string full = path.find('/') == std::string::npos ? "/run/netns/" + path : path;
  int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) { err_ = errno; close(orig_); orig_ = -1; return; }
  if (setns(fd, CLONE_NEWNET) < 0) { err_ = errno; close(orig_); orig_ = -1; }
  close(fd);
}

NetnsScope::~NetnsScope() {
  if (orig_ >= 0) {
    setns(orig_, CLONE_NEWNET);
    close(orig_);
  }
}

std::string OptString(const Napi::Object &o, const char *key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

uint32_t OptU32(const Napi::Object &o, const char *key, uint32_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}

bool OptBool(const Napi::Object &o, const char *key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

// init({ SystemError, InvalidArgumentError, UnavailableError })
static Napi::Value Init(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  AddonState *s = State(env);
  CHECK_ARG(info.Length() == 1 && info[0].IsObject(), "init(classes) needs an object of error classes");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value se = o.Get("SystemError"), ia = o.Get("InvalidArgumentError"), un = o.Get("UnavailableError");
  CHECK_ARG(se.IsFunction() && ia.IsFunction() && un.IsFunction(), "init: SystemError, InvalidArgumentError and UnavailableError must be classes");
  s->systemError = Napi::Persistent(se.As<Napi::Function>());
  s->invalidArgument = Napi::Persistent(ia.As<Napi::Function>());
  s->unavailable = Napi::Persistent(un.As<Napi::Function>());
  s->initialised = true;
  return env.Undefined();
}

static void Cleanup(void *arg) {
  AddonState *s = static_cast<AddonState *>(arg);
  // Copy: CloseNative() erases itself from the set.
  std::set<Closable *> open = s->open;
  for (Closable *c : open) c->CloseNative();
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  AddonState *s = new AddonState();
  env.SetInstanceData(s);  // deleted by node-addon-api at env teardown
  napi_add_env_cleanup_hook(env, Cleanup, s);
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  InitXsk(env, exports);
  InitTap(env, exports);
  InitBpf(env, exports);
  return exports;
}

}  // namespace strata

static Napi::Object StrataInit(Napi::Env env, Napi::Object exports) { return strata::InitAll(env, exports); }
NODE_API_MODULE(strata, StrataInit)

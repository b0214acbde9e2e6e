// Addon entry: init() receives the JS error classes (better-sqlite3 style),
// per-environment state lives in one struct with a cleanup hook.
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
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

// Without init() (a bare require of the addon) the built-in classes still
// carry the code, so a caller can tell the two kinds apart either way.
static void ThrowArg(Napi::Env env, Napi::FunctionReference &cls, bool range, const std::string &msg) {
  Napi::Value e;
  if (!cls.IsEmpty()) {
    e = cls.New({Napi::String::New(env, msg)});
  } else {
    Napi::Error b = range ? Napi::Error(Napi::RangeError::New(env, msg)) : Napi::Error(Napi::TypeError::New(env, msg));
    b.Set("code", Napi::String::New(env, range ? "ERR_STRATA_ARG_RANGE" : "ERR_STRATA_ARG_TYPE"));
    e = b.Value();
  }
  if (env.IsExceptionPending()) return;
  napi_throw(env, e);
}

void ThrowArgType(Napi::Env env, const std::string &msg) { ThrowArg(env, State(env)->argType, false, msg); }
void ThrowArgRange(Napi::Env env, const std::string &msg) { ThrowArg(env, State(env)->argRange, true, msg); }

void ThrowNotInt(Napi::Env env, const char *fn, const char *what, bool isNumber, int64_t lo, int64_t hi) {
  if (!isNumber) ThrowArgType(env, std::string(fn) + what + " must be a number");
  else ThrowArgRange(env, std::string(fn) + what + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
}

void ThrowDescRange(Napi::Env env, const char *fn, int64_t pairs, int64_t start, int64_t n) {
  ThrowArgRange(env, std::string(fn) + ": desc holds " + std::to_string(pairs) + " pairs, not start " + std::to_string(start) +
                " + count " + std::to_string(n));
}

bool ArgInt(const Napi::CallbackInfo &info, size_t i, const char *what, int64_t lo, int64_t hi, int64_t *out) {
  return IntIn(info.Env(), info[i], "", what, lo, hi, out);
}

NativeArea *MapArea(size_t size, bool populate) {
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return new NativeArea{p, size, 1};
}

void UnrefArea(NativeArea *a) {
  if (--a->refs == 0) {
    munmap(a->p, a->size);
    delete a;
  }
}

Napi::ArrayBuffer AreaBuffer(Napi::Env env, NativeArea *a) {
  a->refs++;
  return Napi::ArrayBuffer::New(env, a->p, a->size, [](Napi::Env, void *, NativeArea *x) { UnrefArea(x); }, a);
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

bool OptInt(const Napi::Object &o, const char *key, int64_t lo, int64_t hi, int64_t dflt, int64_t *out) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined()) { *out = dflt; return true; }
  return IntIn(env, v, "", key, lo, hi, out);
}

bool OptBool(const Napi::Object &o, const char *key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

// init({ SystemError, InvalidArgumentError, UnavailableError, ArgumentTypeError, ArgumentRangeError })
static Napi::Value Init(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  AddonState *s = State(env);
  CHECK_ARG(info.Length() == 1 && info[0].IsObject(), "init(classes) needs an object of error classes");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value se = o.Get("SystemError"), ia = o.Get("InvalidArgumentError"), un = o.Get("UnavailableError");
  Napi::Value at = o.Get("ArgumentTypeError"), ar = o.Get("ArgumentRangeError");
  CHECK_PENDING();
  CHECK_ARG(se.IsFunction() && ia.IsFunction() && un.IsFunction() && at.IsFunction() && ar.IsFunction(),
            "init: SystemError, InvalidArgumentError, UnavailableError, ArgumentTypeError and ArgumentRangeError must be classes");
  s->systemError = Napi::Persistent(se.As<Napi::Function>());
  s->invalidArgument = Napi::Persistent(ia.As<Napi::Function>());
  s->unavailable = Napi::Persistent(un.As<Napi::Function>());
  s->argType = Napi::Persistent(at.As<Napi::Function>());
  s->argRange = Napi::Persistent(ar.As<Napi::Function>());
  s->initialised = true;
  return env.Undefined();
}

static void Cleanup(void *arg) {
  AddonState *s = static_cast<AddonState *>(arg);
  // Copy: CloseNative() erases itself from the set.
  std::set<Closable *> open = s->open;
  for (Closable *c : open) c->CloseNative();
  for (int fd : s->mapFds) close(fd);
  s->mapFds.clear();
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

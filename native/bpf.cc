// XDP program control through libxdp, and generic BPF map operations.
//
// Only syscalls live here; key and value layouts are TypeScript's business
// (src/xdp/maps.ts). Maps are addressed by pinned path -> fd; each operation
// checks the caller's buffers against the map's key/value sizes first, so a
// layout bug in JS cannot make the kernel write past a buffer.
//
// fds: every fd opened here is closed on every path before returning,
// except map fds, which JS owns from mapOpen() to mapClose() (and the
// environment cleanup hook closes any left). Queries and detaches of a
// plain (non-dispatcher) program go straight to the kernel through libbpf;
// libxdp objects are used only for its multi-program dispatcher, around a
// leak in libxdp <= 1.4 (LibxdpLeakGuard below).
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace strata {

// libbpf/libxdp messages are collected (not printed): attach() returns them
// so the caller can report why native mode failed.
static std::string g_log;
static int LibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  if (n > 0 && g_log.size() < 16384) g_log.append(buf);
  return 0;
}
static int LibxdpPrint(enum libxdp_print_level level, const char *fmt, va_list ap) {
  if (level == LIBXDP_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  if (n > 0 && g_log.size() < 16384) g_log.append(buf);
  return 0;
}

static std::string XdpErr(int err) {
  char buf[256];
  libxdp_strerror(err, buf, sizeof(buf));
  return buf;
}

// ensureBpffs(path) -> 'present' | 'mounted'
static Napi::Value EnsureBpffs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsString(), "ensureBpffs(path)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  struct statfs st;
  if (statfs(path.c_str(), &st) == 0 && (unsigned long)st.f_type == BPF_FS_MAGIC) return Napi::String::New(env, "present");
  mkdir(path.c_str(), 0700);
  if (mount("bpf", path.c_str(), "bpf", 0, "mode=0700") < 0) THROW_SYS("mount bpf", errno);
  return Napi::String::New(env, "mounted");
}

// ifindex(name, netns?) -> index or 0
static Napi::Value IfIndex(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsString(), "ifindex(name, netns?)");
  std::string netns = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  NetnsScope ns(netns);
  if (!ns.ok()) THROW_SYS("setns", ns.err());
  return Napi::Number::New(env, if_nametoindex(info[0].As<Napi::String>().Utf8Value().c_str()));
}

// ifInfo(name, netns?) -> { ifindex, mtu, mac } (mac: 6 bytes)
static Napi::Value IfInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsString(), "ifInfo(name, netns?)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  CHECK_ARG(!name.empty() && name.size() < IFNAMSIZ, "ifInfo: bad interface name");
  std::string netns = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  NetnsScope ns(netns);
  if (!ns.ok()) THROW_SYS("setns", ns.err());
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) THROW_SYS("socket", errno);
  struct ifreq q;
  Napi::Object o = Napi::Object::New(env);
  memset(&q, 0, sizeof(q));
  strncpy(q.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFINDEX, &q) < 0) { int e = errno; close(s); ThrowSystemMsg(env, "ioctl SIOCGIFINDEX", e, "no interface " + name); return Napi::Value(); }
  o.Set("ifindex", Napi::Number::New(env, q.ifr_ifindex));
  memset(&q, 0, sizeof(q));
  strncpy(q.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFMTU, &q) == 0) o.Set("mtu", Napi::Number::New(env, q.ifr_mtu));
  memset(&q, 0, sizeof(q));
  strncpy(q.ifr_name, name.c_str(), IFNAMSIZ - 1);
  Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
  if (ioctl(s, SIOCGIFHWADDR, &q) == 0) memcpy(mac.Data(), q.ifr_hwaddr.sa_data, 6);
  o.Set("mac", mac);
  close(s);
  return o;
}

// What the kernel says is attached to ifindex (libxdp's own mapping of
// bpf_xdp_query's answer: one mode, native before generic).
struct Attached {
  uint32_t id = 0;
  enum xdp_attach_mode mode = XDP_MODE_UNSPEC;
};

static int QueryAttached(int ifindex, Attached *a) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  int r = bpf_xdp_query(ifindex, 0, &q);
  if (r) return r;
  switch (q.attach_mode) {
    case XDP_ATTACHED_SKB: a->id = q.skb_prog_id; a->mode = XDP_MODE_SKB; break;
    case XDP_ATTACHED_DRV: a->id = q.drv_prog_id; a->mode = XDP_MODE_NATIVE; break;
    case XDP_ATTACHED_HW: a->id = q.hw_prog_id; a->mode = XDP_MODE_HW; break;
    case XDP_ATTACHED_MULTI:
      if (q.drv_prog_id) { a->id = q.drv_prog_id; a->mode = XDP_MODE_NATIVE; }
      else if (q.skb_prog_id) { a->id = q.skb_prog_id; a->mode = XDP_MODE_SKB; }
      break;
    default: break;
  }
  return 0;
}

// Name and tag of program id, through an fd closed before returning.
static bool ProgInfo(uint32_t id, struct bpf_prog_info *pi) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return false;
  memset(pi, 0, sizeof(*pi));
  uint32_t len = sizeof(*pi);
  int r = bpf_obj_get_info_by_fd(fd, pi, &len);
  close(fd);
  return r == 0;
}

// libxdp's multi-program dispatcher (kernel names are cut to 15 bytes).
static bool IsDispatcher(const struct bpf_prog_info &pi) { return strncmp(pi.name, "xdp_dispatcher", 14) == 0; }

static Napi::Object ProgObjInfo(Napi::Env env, const struct bpf_prog_info &pi) {
  Napi::Object po = Napi::Object::New(env);
  po.Set("id", Napi::Number::New(env, pi.id));
  po.Set("name", Napi::String::New(env, pi.name));
  char hex[17] = {};
  for (int i = 0; i < 8; i++) snprintf(hex + 2 * i, 3, "%02x", pi.tag[i]);
  po.Set("tag", Napi::String::New(env, hex));
  return po;
}

// libxdp up to 1.4 (Debian 12 ships 1.3.1) leaks one fd per
// xdp_multiprog__get_from_ifindex() that finds a program (also inside
// xdp_program__attach): xdp_multiprog__from_id() opens the program by id,
// the xdp_program takes a dup, and the original is never closed (fixed
// upstream in xdp-tools: "duplicated fd/hw_fd already in prog, close
// originals"). The kernel gives out the lowest free fd, so the leaked one is
// the lowest fd free when the call starts. Release(), called after every
// libxdp object is closed, closes that fd if it is a BPF program with the
// looked-up id; with a fixed libxdp it is free or something else, and is
// left alone.
class LibxdpLeakGuard {
 public:
  explicit LibxdpLeakGuard(uint32_t id) : id_(id) {
    if (id_ == 0) return;
    low_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (low_ >= 0) close(low_);
  }
  void Release() {
    if (low_ < 0) return;
    char link[64] = {}, path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", low_);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    struct bpf_prog_info pi = {};
    uint32_t len = sizeof(pi);
    if (n > 0 && strcmp(link, "anon_inode:bpf-prog") == 0 && bpf_obj_get_info_by_fd(low_, &pi, &len) == 0 && pi.id == id_)
      close(low_);
    low_ = -1;
  }
 private:
  uint32_t id_;
  int low_ = -1;
};

// Blocks every blockable signal on this thread for its lifetime.
class SignalsHeld {
 public:
  SignalsHeld() { sigset_t all; sigfillset(&all); pthread_sigmask(SIG_BLOCK, &all, &old_); }
  ~SignalsHeld() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
 private:
  sigset_t old_;
};

static const char *ModeName(enum xdp_attach_mode m) {
  switch (m) {
    case XDP_MODE_NATIVE: return "native";
    case XDP_MODE_SKB: return "skb";
    case XDP_MODE_HW: return "hw";
    default: return "none";
  }
}

// xdpAttach({ objPath, section, ifname, netns?, mode: 'native'|'skb', pinRoot })
//   -> { id, mode, log }   (throws SystemError on failure; message carries the log)
static Napi::Value XdpAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsObject(), "xdpAttach(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string obj = OptString(o, "objPath"), sec = OptString(o, "section"), ifname = OptString(o, "ifname");
  std::string netns = OptString(o, "netns"), mode = OptString(o, "mode"), pinRoot = OptString(o, "pinRoot");
  CHECK_PENDING();
  CHECK_ARG(!obj.empty() && !ifname.empty() && !pinRoot.empty(), "xdpAttach: objPath, ifname and pinRoot are required");
  CHECK_ARG(mode == "native" || mode == "skb", "xdpAttach: mode must be native or skb");
  g_log.clear();
  NetnsScope ns(netns);
  if (!ns.ok()) THROW_SYS("setns", ns.err());
  int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) { ThrowSystemMsg(env, "if_nametoindex", errno, "no interface " + ifname); return Napi::Value(); }
  DECLARE_LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pinRoot.c_str());
  struct xdp_program *prog = xdp_program__open_file(obj.c_str(), sec.empty() ? "xdp" : sec.c_str(), &oo);
  long perr = libxdp_get_error(prog);
  if (perr) {
    ThrowSystemMsg(env, "xdp_program__open_file", (int)-perr, obj + ": " + XdpErr((int)perr) + (g_log.empty() ? "" : " | " + g_log));
    return Napi::Value();
  }
  // libxdp looks up what is attached already (and leaks that lookup's fd).
  Attached before;
  QueryAttached(ifindex, &before);
  LibxdpLeakGuard guard(before.id);
  int r;
  {
    // The verifier gives up with EAGAIN whenever a signal is pending on the
    // loading thread (kernel/bpf/verifier.c checks signal_pending()), and
    // libbpf retries only a few times: under V8's sampling profiler (SIGPROF
    // every millisecond) or a busy SIGCHLD the load never finishes. Hold
    // signals for the load; they are delivered when the mask is restored.
    SignalsHeld held;
    r = xdp_program__attach(prog, ifindex, mode == "native" ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
  }
  if (r) {
    std::string log = g_log;
    xdp_program__close(prog);
    guard.Release();
    ThrowSystemMsg(env, "xdp_program__attach", -r, mode + " mode on " + ifname + ": " + XdpErr(r) + (log.empty() ? "" : " | " + log));
    return Napi::Value();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, xdp_program__id(prog)));
  out.Set("ifindex", Napi::Number::New(env, ifindex));
  out.Set("mode", Napi::String::New(env, mode));
  out.Set("log", Napi::String::New(env, g_log));
  xdp_program__close(prog);
  guard.Release();
  return out;
}

static Napi::Object ProgObj(Napi::Env env, struct xdp_program *p) {
  Napi::Object po = Napi::Object::New(env);
  po.Set("id", Napi::Number::New(env, xdp_program__id(p)));
  po.Set("name", Napi::String::New(env, xdp_program__name(p)));
  const unsigned char *tag = xdp_program__tag(p);
  char hex[17] = {};
  for (int i = 0; i < 8 && tag; i++) snprintf(hex + 2 * i, 3, "%02x", tag[i]);
  po.Set("tag", Napi::String::New(env, hex));
  return po;
}

// xdpQuery({ ifname, netns? }) -> { ifindex, mode, legacy, programs: [{ id, name, tag }] }
static Napi::Value XdpQuery(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsObject(), "xdpQuery(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string ifname = OptString(o, "ifname"), netns = OptString(o, "netns");
  CHECK_PENDING();
  g_log.clear();
  NetnsScope ns(netns);
  if (!ns.ok()) THROW_SYS("setns", ns.err());
  int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) { ThrowSystemMsg(env, "if_nametoindex", errno, "no interface " + ifname); return Napi::Value(); }
  Napi::Object out = Napi::Object::New(env);
  Napi::Array progs = Napi::Array::New(env);
  out.Set("ifindex", Napi::Number::New(env, ifindex));
  out.Set("programs", progs);
  Attached a;
  struct bpf_prog_info pi;
  if (QueryAttached(ifindex, &a) != 0 || a.id == 0 || !ProgInfo(a.id, &pi)) {
    out.Set("mode", Napi::String::New(env, "none"));
    out.Set("legacy", Napi::Boolean::New(env, false));
    return out;
  }
  out.Set("mode", Napi::String::New(env, ModeName(a.mode)));
  if (!IsDispatcher(pi)) {
    out.Set("legacy", Napi::Boolean::New(env, true));
    progs.Set(0u, ProgObjInfo(env, pi));
    return out;
  }
  // A dispatcher: its component programs are libxdp's to list.
  out.Set("legacy", Napi::Boolean::New(env, false));
  LibxdpLeakGuard guard(a.id);
  struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
  if (!libxdp_get_error(mp) && mp) {
    uint32_t i = 0;
    for (struct xdp_program *p = xdp_multiprog__next_prog(nullptr, mp); p; p = xdp_multiprog__next_prog(p, mp))
      progs.Set(i++, ProgObj(env, p));
    xdp_multiprog__close(mp);
  }
  guard.Release();
  return out;
}

static uint32_t ModeFlags(enum xdp_attach_mode m) {
  switch (m) {
    case XDP_MODE_NATIVE: return XDP_FLAGS_DRV_MODE;
    case XDP_MODE_SKB: return XDP_FLAGS_SKB_MODE;
    case XDP_MODE_HW: return XDP_FLAGS_HW_MODE;
    default: return 0;
  }
}

// xdpDetach({ ifname, netns?, id }) -> true if a program was detached
static Napi::Value XdpDetach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsObject(), "xdpDetach(options)");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string ifname = OptString(o, "ifname"), netns = OptString(o, "netns");
  int64_t id64;
  if (!OptInt(o, "id", 0, UINT32_MAX, 0, &id64)) return Napi::Value();
  CHECK_ARG(id64 != 0, "xdpDetach: id is required");
  const uint32_t id = (uint32_t)id64;
  g_log.clear();
  NetnsScope ns(netns);
  if (!ns.ok()) THROW_SYS("setns", ns.err());
  int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) return Napi::Boolean::New(env, false);  // interface gone: nothing attached
  Attached a;
  struct bpf_prog_info pi;
  if (QueryAttached(ifindex, &a) != 0 || a.id == 0 || !ProgInfo(a.id, &pi)) return Napi::Boolean::New(env, false);
  int r = -ENOENT;
  if (!IsDispatcher(pi)) {
    if (a.id != id) return Napi::Boolean::New(env, false);
    // Detach only if it is still that program (XDP_FLAGS_REPLACE compares
    // against old_prog_fd in the kernel): a program attached by someone
    // else in between is left alone.
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return Napi::Boolean::New(env, false);
    LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = fd);
    r = bpf_xdp_detach(ifindex, ModeFlags(a.mode) | XDP_FLAGS_REPLACE, &ao);
    close(fd);
    if (r == -EEXIST) r = -ENOENT;
  } else {
    LibxdpLeakGuard guard(a.id);
    struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
    if (!libxdp_get_error(mp) && mp) {
      enum xdp_attach_mode mode = xdp_multiprog__attach_mode(mp);
      for (struct xdp_program *p = xdp_multiprog__next_prog(nullptr, mp); p; p = xdp_multiprog__next_prog(p, mp)) {
        if (xdp_program__id(p) == id) { r = xdp_program__detach(p, ifindex, mode, 0); break; }
      }
      xdp_multiprog__close(mp);
    }
    guard.Release();
  }
  if (r == -ENOENT) return Napi::Boolean::New(env, false);
  if (r) { ThrowSystemMsg(env, "xdp_detach", -r, ifname + ": " + XdpErr(r) + (g_log.empty() ? "" : " | " + g_log)); return Napi::Value(); }
  return Napi::Boolean::New(env, true);
}

// --- maps ----------------------------------------------------------------

static bool MapInfo(int fd, struct bpf_map_info *mi) {
  memset(mi, 0, sizeof(*mi));
  uint32_t len = sizeof(*mi);
  return bpf_obj_get_info_by_fd(fd, mi, &len) == 0;
}

static bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
         type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

static size_t ValueBytes(const struct bpf_map_info &mi) {
  if (!IsPerCpu(mi.type)) return mi.value_size;
  int n = libbpf_num_possible_cpus();
  return (size_t)((mi.value_size + 7) & ~7u) * (size_t)(n > 0 ? n : 1);
}

// mapOpen(path) -> fd
static Napi::Value MapOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  CHECK_TYPE(info[0].IsString(), "mapOpen(path)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) { int e = errno; ThrowSystemMsg(env, "bpf_obj_get", e, path + ": " + strerror(e)); return Napi::Value(); }
  // A pin may name a program or a link as well: only maps are handed out.
  struct bpf_map_info mi;
  if (!MapInfo(fd, &mi)) { int e = errno; close(fd); ThrowSystemMsg(env, "bpf_obj_get_info_by_fd", e, path + ": not a BPF map"); return Napi::Value(); }
  State(env)->mapFds.insert(fd);
  return Napi::Number::New(env, fd);
}

// mapClose(fd): only an fd mapOpen() returned and not yet closed; anything
// else is a RangeError, so JS cannot close fds it does not own.
static Napi::Value MapClose(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ARG_INT(fd, 0, "mapClose: fd", INT32_MIN, INT32_MAX);
  CHECK_RANGE(State(env)->mapFds.erase((int)fd) == 1, "mapClose: fd is not an open map from mapOpen()");
  close((int)fd);
  return env.Undefined();
}

// mapInfo(fd) -> { type, keySize, valueSize, maxEntries, name, id, perCpu, valueBytes }
static Napi::Value MapInfoJs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  ARG_INT(fd, 0, "mapInfo: fd", INT32_MIN, INT32_MAX);
  struct bpf_map_info mi;
  if (!MapInfo((int)fd, &mi)) THROW_SYS("bpf_obj_get_info_by_fd", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::Number::New(env, mi.type));
  o.Set("keySize", Napi::Number::New(env, mi.key_size));
  o.Set("valueSize", Napi::Number::New(env, mi.value_size));
  o.Set("maxEntries", Napi::Number::New(env, mi.max_entries));
  o.Set("name", Napi::String::New(env, mi.name));
  o.Set("id", Napi::Number::New(env, mi.id));
  o.Set("perCpu", Napi::Boolean::New(env, IsPerCpu(mi.type)));
  o.Set("valueBytes", Napi::Number::New(env, (double)ValueBytes(mi)));
  return o;
}

#define MAP_PROLOGUE(nargs, usage)                                                        \
  Napi::Env env = info.Env();                                                             \
  CHECK_TYPE(info.Length() >= nargs, usage);                                              \
  ARG_INT(fd64, 0, "map fd", INT32_MIN, INT32_MAX);                                        \
  int fd = (int)fd64;                                                                     \
  struct bpf_map_info mi;                                                                 \
  if (!MapInfo(fd, &mi)) THROW_SYS("bpf_obj_get_info_by_fd", errno);

// mapLookup(fd, key, value) -> found (value filled; per-CPU maps: all CPUs)
static Napi::Value MapLookup(const Napi::CallbackInfo &info) {
  MAP_PROLOGUE(3, "mapLookup(fd, key, value)");
  uint8_t *k, *v; size_t kl, vl;
  CHECK_TYPE(GetU8Array(info[1], &k, &kl) && GetU8Array(info[2], &v, &vl), "mapLookup: key and value must be Uint8Arrays");
  CHECK_RANGE(kl == mi.key_size, "mapLookup: key must be the map's key size");
  CHECK_RANGE(vl >= ValueBytes(mi), "mapLookup: value buffer too small for the map's value (x CPUs)");
  if (bpf_map_lookup_elem(fd, k, v) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    THROW_SYS("bpf_map_lookup_elem", errno);
  }
  return Napi::Boolean::New(env, true);
}

// mapUpdate(fd, key, value, flags)
static Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
  MAP_PROLOGUE(3, "mapUpdate(fd, key, value, flags?)");
  uint8_t *k, *v; size_t kl, vl;
  CHECK_TYPE(GetU8Array(info[1], &k, &kl) && GetU8Array(info[2], &v, &vl), "mapUpdate: key and value must be Uint8Arrays");
  CHECK_RANGE(kl == mi.key_size, "mapUpdate: key must be the map's key size");
  CHECK_RANGE(vl >= ValueBytes(mi), "mapUpdate: value buffer too small");
  int64_t flags = BPF_ANY;
  if (!info[3].IsUndefined() && !ArgInt(info, 3, "mapUpdate: flags", 0, UINT32_MAX, &flags)) return Napi::Value();
  if (bpf_map_update_elem(fd, k, v, flags) < 0) THROW_SYS("bpf_map_update_elem", errno);
  return env.Undefined();
}

// mapDelete(fd, key) -> existed
static Napi::Value MapDelete(const Napi::CallbackInfo &info) {
  MAP_PROLOGUE(2, "mapDelete(fd, key)");
  uint8_t *k; size_t kl;
  CHECK_TYPE(GetU8Array(info[1], &k, &kl), "mapDelete: key must be a Uint8Array");
  CHECK_RANGE(kl == mi.key_size, "mapDelete: key must be the map's key size");
  if (bpf_map_delete_elem(fd, k) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    THROW_SYS("bpf_map_delete_elem", errno);
  }
  return Napi::Boolean::New(env, true);
}

// mapNextKey(fd, key|null, next) -> has next
static Napi::Value MapNextKey(const Napi::CallbackInfo &info) {
  MAP_PROLOGUE(3, "mapNextKey(fd, key|null, next)");
  uint8_t *k = nullptr, *n; size_t kl = 0, nl;
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    CHECK_TYPE(GetU8Array(info[1], &k, &kl), "mapNextKey: key must be a Uint8Array or null");
    CHECK_RANGE(kl == mi.key_size, "mapNextKey: key must be the map's key size");
  }
  CHECK_TYPE(GetU8Array(info[2], &n, &nl), "mapNextKey: next must be a Uint8Array");
  CHECK_RANGE(nl == mi.key_size, "mapNextKey: next must be the map's key size");
  if (bpf_map_get_next_key(fd, k, n) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    THROW_SYS("bpf_map_get_next_key", errno);
  }
  return Napi::Boolean::New(env, true);
}

// progTestRun(progId, frame: Uint8Array) -> { retval, dataOut }
// Runs a loaded program once on a frame (BPF_PROG_TEST_RUN): lets tests
// drive the XDP parser with exact, crafted frames without a wire.
static Napi::Value ProgTestRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint8_t *d; size_t dl;
  ARG_INT(id, 0, "progTestRun: progId", 0, UINT32_MAX);
  CHECK_TYPE(GetU8Array(info[1], &d, &dl), "progTestRun: frame must be a Uint8Array");
  CHECK_RANGE(dl > 0 && dl <= 4096, "progTestRun: frame must be 1..4096 bytes");
  int fd = bpf_prog_get_fd_by_id((uint32_t)id);
  if (fd < 0) THROW_SYS("bpf_prog_get_fd_by_id", errno);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, 4096 + 256);
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = d, .data_out = out.Data(), .data_size_in = (__u32)dl,
                      .data_size_out = (__u32)out.ElementLength(), .repeat = 1);
  int r = bpf_prog_test_run_opts(fd, &o);
  int e = errno;
  close(fd);
  if (r < 0) THROW_SYS("bpf_prog_test_run_opts", e);
  Napi::Object res = Napi::Object::New(env);
  res.Set("retval", Napi::Number::New(env, o.retval));
  res.Set("dataOut", Napi::Uint8Array::New(env, o.data_size_out, out.ArrayBuffer(), 0));
  return res;
}

static Napi::Value PossibleCpus(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

Napi::Object InitBpf(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(LibbpfPrint);
  libxdp_set_print(LibxdpPrint);
  exports.Set("ensureBpffs", Napi::Function::New(env, EnsureBpffs, "ensureBpffs"));
  exports.Set("ifInfo", Napi::Function::New(env, IfInfo, "ifInfo"));
  exports.Set("ifindex", Napi::Function::New(env, IfIndex, "ifindex"));
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach, "xdpAttach"));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery, "xdpQuery"));
  exports.Set("xdpDetach", Napi::Function::New(env, XdpDetach, "xdpDetach"));
  exports.Set("mapOpen", Napi::Function::New(env, MapOpen, "mapOpen"));
  exports.Set("mapClose", Napi::Function::New(env, MapClose, "mapClose"));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfoJs, "mapInfo"));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey, "mapNextKey"));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun, "progTestRun"));
  exports.Set("possibleCpus", Napi::Function::New(env, PossibleCpus, "possibleCpus"));
  return exports;
}

}  // namespace strata

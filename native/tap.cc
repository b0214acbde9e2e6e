// TAP devices: /dev/net/tun with IFF_TAP | IFF_NO_PI, non-blocking.
//
// Frames live in a frame pool the addon allocates and owns, lent to JS as an
// external ArrayBuffer (`mem`), as the UMEM is; JS names slots by (offset,
// capacity) pairs. rx() reads frames until EAGAIN or the burst is full, tx()
// writes a burst; each is one N-API call. Readiness comes through uv_poll
// like the XSK.
//
// Why native ownership and not a detach check per call: the pool pointer is
// used on every rx()/tx(), and a JS-owned buffer can be transferred
// (structuredClone, postMessage) and freed between two calls. Owning the
// memory makes that impossible at no per-call cost (napi_is_detached_
// arraybuffer would be two N-API calls per burst); a transfer now only
// detaches JS's own view.
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include <memory>

namespace strata {

class Tap : public Napi::ObjectWrap<Tap>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tap", {
      InstanceMethod<&Tap::Rx>("rx"),
      InstanceMethod<&Tap::Tx>("tx"),
      InstanceMethod<&Tap::StartPoll>("startPoll"),
      InstanceMethod<&Tap::StopPoll>("stopPoll"),
      InstanceMethod<&Tap::Info>("info"),
      InstanceMethod<&Tap::Stats>("stats"),
      InstanceMethod<&Tap::Close>("close"),
    });
  }

  // new Tap({ name, netns?, create?: boolean, persist?: boolean }, poolBytes)
  // -> this.mem: the frame pool (poolBytes, zeroed). create=false attaches
  // to an existing (persistent) device and fails if there is none;
  // create=true makes one if needed.
  explicit Tap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Tap>(info) {
    Napi::Env env = info.Env();
    CHECK_TYPE_VOID(info.Length() == 2 && info[0].IsObject(), "Tap(options, poolBytes)");
    int64_t poolBytes;
    if (!ArgInt(info, 1, "Tap: poolBytes", 1, kMaxPoolBytes, &poolBytes)) return;
    Napi::Object o = info[0].As<Napi::Object>();
    name_ = OptString(o, "name");
    std::string netns = OptString(o, "netns");
    bool create = OptBool(o, "create", false);
    bool persist = OptBool(o, "persist", false);
    CHECK_PENDING_VOID();
    CHECK_ARG_VOID(!name_.empty() && name_.size() < IFNAMSIZ, "name must be an interface name");

    NetnsScope ns(netns);
    if (!ns.ok()) { ThrowSystemMsg(env, "setns", ns.err(), "cannot enter " + netns + ": " + strerror(ns.err())); return; }
    if (!create) {
      // Attach only: the device must exist (a persistent tap, e.g. the lab's).
      if (if_nametoindex_(name_) == 0) { ThrowSystemMsg(env, "if_nametoindex", ENODEV, "no TAP device " + name_); return; }
    }
    fd_ = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) {
      int e = errno;
      if (e == ENOENT || e == ENXIO || e == ENODEV) ThrowUnavailable(env, "tap", "no /dev/net/tun");
      else ThrowSystem(env, "open /dev/net/tun", e);
      return;
    }
    struct ifreq ifr = {};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd_, TUNSETIFF, &ifr) < 0) {
      int e = errno;
      close(fd_); fd_ = -1;
      ThrowSystemMsg(env, "ioctl TUNSETIFF", e, name_ + ": " + strerror(e));
      return;
    }
    if (persist) ioctl(fd_, TUNSETPERSIST, 1);
    name_ = ifr.ifr_name;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
      struct ifreq q = {};
      strncpy(q.ifr_name, name_.c_str(), IFNAMSIZ - 1);
      if (ioctl(s, SIOCGIFHWADDR, &q) == 0) memcpy(mac_, q.ifr_hwaddr.sa_data, 6);
      memset(&q, 0, sizeof(q));
      strncpy(q.ifr_name, name_.c_str(), IFNAMSIZ - 1);
      if (ioctl(s, SIOCGIFMTU, &q) == 0) mtu_ = q.ifr_mtu;
      memset(&q, 0, sizeof(q));
      strncpy(q.ifr_name, name_.c_str(), IFNAMSIZ - 1);
      if (ioctl(s, SIOCGIFINDEX, &q) == 0) ifindex_ = q.ifr_ifindex;
      close(s);
    }
    area_ = MapArea((size_t)poolBytes, false);
    if (!area_) { int e = errno; close(fd_); fd_ = -1; ThrowSystem(env, "mmap", e); return; }
    mem_ = static_cast<uint8_t *>(area_->p);
    memSize_ = area_->size;
    info.This().As<Napi::Object>().Set("mem", AreaBuffer(env, area_));
    State(env)->open.insert(this);
    open_ = true;
  }

  ~Tap() override { CloseNative(); }

  // The pool stays mapped while JS still holds `mem` (NativeArea refs).
  void CloseNative() override {
    StopPollNative();
    if (fd_ >= 0) { close(fd_); fd_ = -1; }
    if (area_) { UnrefArea(area_); area_ = nullptr; mem_ = nullptr; memSize_ = 0; }
    if (open_) { State(Env())->open.erase(this); open_ = false; }
  }

 private:
  static unsigned if_nametoindex_(const std::string &n);

  // rx(desc, start, max) -> n: desc[start..start+max) hold (offset, capacity)
  // of empty pool slots; each read frame sets its pair's length. Stops at
  // EAGAIN. Slots past n are untouched (still the caller's).
  Napi::Value Rx(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(fd_ >= 0, "tap is closed");
    DESC_WINDOW(p, max, "rx");
    uint32_t n = 0;
    while (n < max) {
      uint32_t off = p[2 * n], cap = p[2 * n + 1];
      if ((size_t)off + cap > memSize_ || cap == 0) { badDescs_++; break; }
      ssize_t r = read(fd_, mem_ + off, cap);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) readErrors_++;
        break;
      }
      p[2 * n + 1] = (uint32_t)r;
      rxPackets_++;
      rxBytes_ += (uint64_t)r;
      n++;
    }
    return Napi::Number::New(env, n);
  }

  // tx(desc, n) -> written: writes frames in order; at EAGAIN (the device
  // queue is full) the rest are dropped and counted.
  Napi::Value Tx(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(fd_ >= 0, "tap is closed");
    DESC_PREFIX(d, n, "tx");
    uint32_t done = 0;
    bool full = false;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t off = d[2 * i], len = d[2 * i + 1];
      if ((size_t)off + len > memSize_ || len == 0) { badDescs_++; continue; }
      if (full) { txDropped_++; continue; }
      ssize_t r;
      do { r = write(fd_, mem_ + off, len); } while (r < 0 && errno == EINTR);
      if (r < 0) {
        if (errno == EAGAIN) { full = true; txQueueFull_++; }
        else writeErrors_++;
        txDropped_++;
        continue;
      }
      done++;
      txPackets_++;
      txBytes_ += len;
    }
    return Napi::Number::New(env, done);
  }

  Napi::Value StartPoll(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(fd_ >= 0, "tap is closed");
    CHECK_TYPE(info[0].IsFunction(), "startPoll(fn) needs a function");
    if (!poll_.Start(env, fd_, info[0].As<Napi::Function>(), "strata:tap")) return Napi::Value();
    return env.Undefined();
  }

  void StopPollNative() { poll_.Stop(); }

  Napi::Value StopPoll(const Napi::CallbackInfo &info) {
    StopPollNative();
    return info.Env().Undefined();
  }

  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("fd", Napi::Number::New(env, fd_));
    o.Set("name", Napi::String::New(env, name_));
    o.Set("ifindex", Napi::Number::New(env, ifindex_));
    o.Set("mtu", Napi::Number::New(env, mtu_));
    Napi::Uint8Array m = Napi::Uint8Array::New(env, 6);
    memcpy(m.Data(), mac_, 6);
    o.Set("mac", m);
    return o;
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    auto set = [&](const char *k, double v) { o.Set(k, Napi::Number::New(env, v)); };
    set("rxPackets", (double)rxPackets_);
    set("rxBytes", (double)rxBytes_);
    set("txPackets", (double)txPackets_);
    set("txBytes", (double)txBytes_);
    set("txDropped", (double)txDropped_);
    set("txQueueFull", (double)txQueueFull_);
    set("readErrors", (double)readErrors_);
    set("writeErrors", (double)writeErrors_);
    set("badDescs", (double)badDescs_);
    set("pollEvents", (double)poll_.events());
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    CloseNative();
    return info.Env().Undefined();
  }

  std::string name_;
  int fd_ = -1;
  int ifindex_ = 0;
  int mtu_ = 1500;
  uint8_t mac_[6] = {};
  bool open_ = false;
  NativeArea *area_ = nullptr;
  uint8_t *mem_ = nullptr;
  size_t memSize_ = 0;
  FdPoll poll_;
  uint64_t rxPackets_ = 0, rxBytes_ = 0, txPackets_ = 0, txBytes_ = 0, txDropped_ = 0, txQueueFull_ = 0;
  uint64_t readErrors_ = 0, writeErrors_ = 0, badDescs_ = 0;
  // Frame pool bound: 1 GiB (the default pool is 4096 x 2048 = 8 MiB).
  static constexpr int64_t kMaxPoolBytes = int64_t(1) << 30;
};

unsigned Tap::if_nametoindex_(const std::string &n) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  struct ifreq q = {};
  strncpy(q.ifr_name, n.c_str(), IFNAMSIZ - 1);
  int r = ioctl(s, SIOCGIFINDEX, &q);
  close(s);
  return r == 0 ? (unsigned)q.ifr_ifindex : 0;
}

Napi::Object InitTap(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Tap::Define(env);
  State(env)->tapCtor = Napi::Persistent(ctor);
  exports.Set("Tap", ctor);
  return exports;
}

}  // namespace strata

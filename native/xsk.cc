// AF_XDP sockets through libxdp's xsk API.
//
// One Xsk = one socket bound to (ifindex, queue) with its own UMEM. The UMEM
// is mmap'ed once and handed to JS as one external ArrayBuffer: JS reads and
// writes packet bytes in place, and only (offset, length) pairs cross the
// N-API boundary, a burst per call. The fill and completion rings never reach
// JS: a native free-frame stack feeds the fill ring and is fed by the
// completion ring, in batches, using the cached ring indexes of xsk.h.
//
// Frame ownership is tracked per frame (one byte each) so a double free or a
// send of a frame JS does not own is caught and counted instead of corrupting
// the rings.
#include "common.h"
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <linux/if_xdp.h>
#include <xdp/xsk.h>
#include <memory>
#include <vector>

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

namespace strata {

enum FrameOwner : uint8_t { kFree = 0, kKernel = 1, kUser = 2 };

class Xsk : public Napi::ObjectWrap<Xsk>, public Closable {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Xsk", {
      InstanceMethod<&Xsk::Rx>("rx"),
      InstanceMethod<&Xsk::Tx>("tx"),
      InstanceMethod<&Xsk::Alloc>("alloc"),
      InstanceMethod<&Xsk::Free>("free"),
      InstanceMethod<&Xsk::Kick>("kick"),
      InstanceMethod<&Xsk::StartPoll>("startPoll"),
      InstanceMethod<&Xsk::StopPoll>("stopPoll"),
      InstanceMethod<&Xsk::Stats>("stats"),
      InstanceMethod<&Xsk::Info>("info"),
      InstanceMethod<&Xsk::Close>("close"),
    });
  }

  // new Xsk({ ifname, queue, netns?, frameSize, frameCount, rxSize, txSize,
  //           fillSize, compSize, bind: 'auto'|'copy'|'zerocopy', needWakeup,
  //           busyPoll, busyPollUsec, busyPollBudget })
  explicit Xsk(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Xsk>(info) {
    Napi::Env env = info.Env();
    CHECK_TYPE_VOID(info.Length() == 1 && info[0].IsObject(), "Xsk(options) needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    std::string ifname = OptString(o, "ifname");
    std::string netns = OptString(o, "netns");
    CHECK_PENDING_VOID();
    CHECK_ARG_VOID(!ifname.empty() && ifname.size() < IFNAMSIZ, "ifname must be an interface name");
    int64_t queue, frameSize, frameCount, rxSize, txSize, fillSize, compSize, busyUsec, busyBudget;
    if (!OptInt(o, "queue", 0, UINT32_MAX, 0, &queue) || !OptInt(o, "frameSize", 0, UINT32_MAX, 4096, &frameSize) ||
        !OptInt(o, "frameCount", 64, 1 << 20, 4096, &frameCount) || !OptInt(o, "rxSize", 0, kMaxRing, 2048, &rxSize) ||
        !OptInt(o, "txSize", 0, kMaxRing, 2048, &txSize) || !OptInt(o, "fillSize", 0, kMaxRing, 2048, &fillSize) ||
        !OptInt(o, "compSize", 0, kMaxRing, 2048, &compSize) || !OptInt(o, "busyPollUsec", 0, INT32_MAX, 20, &busyUsec) ||
        !OptInt(o, "busyPollBudget", 0, INT32_MAX, 64, &busyBudget))
      return;
    queue_ = (uint32_t)queue;
    frameSize_ = (uint32_t)frameSize;
    frameCount_ = (uint32_t)frameCount;
    std::string bind = OptString(o, "bind");
    needWakeup_ = OptBool(o, "needWakeup", true);
    busyPoll_ = OptBool(o, "busyPoll", false);
    CHECK_PENDING_VOID();
    auto pow2 = [](int64_t v) { return v != 0 && (v & (v - 1)) == 0; };
    CHECK_ARG_VOID(frameSize_ == 2048 || frameSize_ == 4096, "frameSize must be 2048 or 4096");
    CHECK_ARG_VOID(pow2(rxSize) && pow2(txSize) && pow2(fillSize) && pow2(compSize), "ring sizes must be powers of two");
    CHECK_ARG_VOID(bind.empty() || bind == "auto" || bind == "copy" || bind == "zerocopy", "bind must be auto, copy or zerocopy");

    frameShift_ = frameSize_ == 4096 ? 12 : 11;
    frameMask_ = frameSize_ - 1;
    size_t size = (size_t)frameSize_ * frameCount_;
    area_ = MapArea(size, true);
    if (!area_) { ThrowSystem(env, "mmap", errno); return; }
    void *p = area_->p;

    xsk_umem_config ucfg = {};
    ucfg.fill_size = (uint32_t)fillSize;
    ucfg.comp_size = (uint32_t)compSize;
    ucfg.frame_size = frameSize_;
    ucfg.frame_headroom = 0;
    ucfg.flags = 0;

    xsk_socket_config scfg = {};
    scfg.rx_size = (uint32_t)rxSize;
    scfg.tx_size = (uint32_t)txSize;
    scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    scfg.bind_flags = 0;
    if (bind == "copy") scfg.bind_flags |= XDP_COPY;
    if (bind == "zerocopy") scfg.bind_flags |= XDP_ZEROCOPY;
    if (needWakeup_) scfg.bind_flags |= XDP_USE_NEED_WAKEUP;
    int r;
    {
      // Both calls inside the namespace: libxdp makes the UMEM's socket in
      // xsk_umem__create and reuses it for the first XSK, and bind() resolves
      // the ifindex in the socket's own namespace.
      NetnsScope ns(netns);
      if (!ns.ok()) { CloseNative(); ThrowSystemMsg(env, "setns", ns.err(), "cannot enter " + netns + ": " + strerror(ns.err())); return; }
      ifindex_ = if_nametoindex(ifname.c_str());
      if (ifindex_ == 0) { int e = errno; CloseNative(); ThrowSystemMsg(env, "if_nametoindex", e, "no interface " + ifname); return; }
      // The kernel releases a closed socket's hold on its queue from a
      // workqueue, so binding right after a close (a restart, a test) can
      // see EBUSY for a few milliseconds: retry EBUSY briefly, from a fresh
      // UMEM registration each time, before reporting the queue as taken.
      for (int attempt = 0;; attempt++) {
        r = xsk_umem__create(&umem_, p, size, &fill_, &comp_, &ucfg);
        if (r) { CloseNative(); ThrowSystem(env, "xsk_umem__create", r); return; }
        r = xsk_socket__create(&xsk_, ifname.c_str(), queue_, umem_, &rx_, &tx_, &scfg);
        if (r != -EBUSY || attempt >= kBusyRetries) break;
        xsk_umem__delete(umem_);
        umem_ = nullptr;
        fill_ = {}; comp_ = {}; rx_ = {}; tx_ = {};
        usleep(kBusyRetryUsec);
      }
    }
    if (r) {
      CloseNative();
      if (r == -EOPNOTSUPP && bind == "zerocopy")
        ThrowUnavailable(env, "afxdp zero-copy", "the driver of " + ifname + " cannot bind AF_XDP in zero-copy mode (use mode 'auto' or 'copy')");
      else if (r == -EOPNOTSUPP || r == -EAFNOSUPPORT)
        ThrowUnavailable(env, "afxdp", std::string("AF_XDP socket on ") + ifname + ": " + strerror(-r));
      else
        ThrowSystemMsg(env, "xsk_socket__create", -r, ifname + " queue " + std::to_string(queue_) + ": " + strerror(-r) +
                       (r == -EBUSY ? " (another AF_XDP socket is bound to this queue)" : ""));
      return;
    }
    fd_ = xsk_socket__fd(xsk_);
    maxKicks_ = (uint32_t)txSize / 32 + 2;

    xdp_options opts = {};
    socklen_t ol = sizeof(opts);
    if (getsockopt(fd_, SOL_XDP, XDP_OPTIONS, &opts, &ol) == 0) zerocopy_ = (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;

    if (busyPoll_) {
      int one = 1;
      int us = (int)busyUsec, budget = (int)busyBudget;
      busyPrefer_ = setsockopt(fd_, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof(one)) == 0;
      busyUsecOk_ = setsockopt(fd_, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us)) == 0;
      busyBudgetOk_ = setsockopt(fd_, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)) == 0;
    }

    // Every frame starts on the free stack; then up to half of them (at most
    // the fill ring's size) go to the kernel for receiving.
    owner_.assign(frameCount_, kFree);
    freeStack_.resize(frameCount_);
    for (uint32_t i = 0; i < frameCount_; i++) freeStack_[i] = (uint64_t)(frameCount_ - 1 - i) * frameSize_;
    freeTop_ = frameCount_;
    fillTarget_ = std::min((uint32_t)fillSize, frameCount_ / 2);
    Refill();

    // The UMEM is native memory lent to JS (see NativeArea): a transfer of
    // `mem` detaches JS's view but never unmaps what the kernel writes into.
    info.This().As<Napi::Object>().Set("mem", AreaBuffer(env, area_));
    State(env)->open.insert(this);
    open_ = true;
  }

  ~Xsk() override { CloseNative(); }

  void CloseNative() override {
    if (poll_.active()) StopPollNative();
    if (xsk_) { xsk_socket__delete(xsk_); xsk_ = nullptr; }
    if (umem_) { xsk_umem__delete(umem_); umem_ = nullptr; }
    if (area_) { UnrefArea(area_); area_ = nullptr; }
    if (open_) { State(Env())->open.erase(this); open_ = false; }
    fd_ = -1;
  }

 private:
  // Fill ring <- free stack, in one batch. The fill ring is kept at
  // fillTarget_ outstanding frames; the rest stay available for alloc().
  void Refill() {
    uint32_t inFill = fillOutstanding_;
    if (inFill >= fillTarget_ || freeTop_ == 0) return;
    uint32_t want = std::min<uint32_t>(fillTarget_ - inFill, freeTop_);
    uint32_t idx;
    uint32_t got = xsk_ring_prod__reserve(&fill_, want, &idx);
    if (got == 0) return;
    for (uint32_t i = 0; i < got; i++) {
      uint64_t a = freeStack_[--freeTop_];
      owner_[a >> frameShift_] = kKernel;
      *xsk_ring_prod__fill_addr(&fill_, idx + i) = a;
    }
    xsk_ring_prod__submit(&fill_, got);
    fillOutstanding_ += got;
  }

  // Completion ring -> free stack, in one batch.
  void Reclaim() {
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&comp_, compBatch_, &idx);
    if (n == 0) return;
    for (uint32_t i = 0; i < n; i++) {
      uint64_t a = *xsk_ring_cons__comp_addr(&comp_, idx + i);
      a -= a & frameMask_;
      owner_[a >> frameShift_] = kFree;
      freeStack_[freeTop_++] = a;
    }
    xsk_ring_cons__release(&comp_, n);
    txOutstanding_ -= n;
  }

  void WakeRx() {
    recvfrom(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    rxWakeups_++;
  }

  // In copy mode the kernel transmits at most 32 descriptors per sendto()
  // and answers EAGAIN while more are queued (or while the completion ring
  // is full): keep kicking, reclaiming completions in between, until the
  // ring is drained or the kernel stops making progress.
  void WakeTx() {
    for (uint32_t i = 0; i < maxKicks_; i++) {
      int r = sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0);
      txWakeups_++;
      if (r >= 0) return;
      if (errno == EAGAIN) { Reclaim(); continue; }
      if (errno != EBUSY && errno != ENOBUFS && errno != ENETDOWN) txWakeErrors_++;
      return;
    }
  }

  bool ValidFrame(uint64_t off, uint32_t len, uint32_t *frame) const {
    uint64_t base = off - (off & frameMask_);
    if (off >= area_->size || off + len > base + frameSize_) return false;
    *frame = (uint32_t)(base >> frameShift_);
    return true;
  }

  // rx(desc, start, max) -> n: appends up to max received frames at pair
  // index start. Ownership: kernel -> JS.
  Napi::Value Rx(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(xsk_ != nullptr, "socket is closed");
    DESC_WINDOW(out, max, "rx");
    Reclaim();
    uint32_t idx;
    uint32_t n = xsk_ring_cons__peek(&rx_, max, &idx);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
      const xdp_desc *x = xsk_ring_cons__rx_desc(&rx_, idx + i);
      uint64_t a = xsk_umem__add_offset_to_addr(x->addr);
      out[2 * i] = (uint32_t)a;
      out[2 * i + 1] = x->len;
      owner_[a >> frameShift_] = kUser;
      bytes += x->len;
    }
    if (n) {
      xsk_ring_cons__release(&rx_, n);
      fillOutstanding_ -= n;
      rxPackets_ += n;
      rxBytes_ += bytes;
    }
    Refill();
    if (busyPoll_ || (n == 0 && needWakeup_ && xsk_ring_prod__needs_wakeup(&fill_))) WakeRx();
    return Napi::Number::New(env, n);
  }

  // tx(desc, n) -> queued: every frame in desc[0..n) passes to the kernel;
  // those the TX ring cannot take are dropped (back to the free stack) and
  // counted. Ownership: JS -> kernel for all of them.
  Napi::Value Tx(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(xsk_ != nullptr, "socket is closed");
    DESC_PREFIX(d, n, "tx");
    Reclaim();
    uint32_t idx = 0;
    uint32_t room = xsk_prod_nb_free(&tx_, n);
    if (room < n) {
      // Ring full: kick the kernel once so it drains, then take what fits.
      txRingFull_++;
      WakeTx();
      Reclaim();
      room = xsk_prod_nb_free(&tx_, n);
    }
    uint32_t take = std::min(room, n);
    if (take) xsk_ring_prod__reserve(&tx_, take, &idx);
    uint32_t queued = 0;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
      uint64_t off = d[2 * i];
      uint32_t len = d[2 * i + 1], f;
      if (!ValidFrame(off, len, &f) || owner_[f] != kUser) { badDescs_++; continue; }
      if (queued < take && len > 0) {
        xdp_desc *x = xsk_ring_prod__tx_desc(&tx_, idx + queued);
        x->addr = off;
        x->len = len;
        owner_[f] = kKernel;
        queued++;
        bytes += len;
      } else {
        owner_[f] = kFree;
        freeStack_[freeTop_++] = off - (off & frameMask_);
        txDropped_++;
      }
    }
    if (take) {
      // Unused reservations (invalid descs) are given back by submitting only
      // what we wrote: cached_prod must match.
      tx_.cached_prod -= (take - queued);
      if (queued) xsk_ring_prod__submit(&tx_, queued);
    }
    txOutstanding_ += queued;
    txPackets_ += queued;
    txBytes_ += bytes;
    if (queued && (!needWakeup_ || busyPoll_ || xsk_ring_prod__needs_wakeup(&tx_))) WakeTx();
    Refill();
    return Napi::Number::New(env, queued);
  }

  // alloc(desc, start, n) -> got: empty frames (length 0) for building
  // packets. Ownership: native -> JS.
  Napi::Value Alloc(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(xsk_ != nullptr, "socket is closed");
    DESC_WINDOW(out, n, "alloc");
    Reclaim();  // one load of the producer index when nothing completed
    uint32_t got = std::min<uint32_t>(n, freeTop_);
    for (uint32_t i = 0; i < got; i++) {
      uint64_t a = freeStack_[--freeTop_];
      owner_[a >> frameShift_] = kUser;
      out[2 * i] = (uint32_t)a;
      out[2 * i + 1] = 0;
    }
    if (got < n) allocFailed_ += n - got;
    return Napi::Number::New(env, got);
  }

  // free(desc, n): frames back to the free stack. Ownership: JS -> native.
  Napi::Value Free(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(xsk_ != nullptr, "socket is closed");
    DESC_PREFIX(d, n, "free");
    for (uint32_t i = 0; i < n; i++) {
      uint32_t f;
      if (!ValidFrame(d[2 * i], 0, &f) || owner_[f] != kUser) { badDescs_++; continue; }
      owner_[f] = kFree;
      freeStack_[freeTop_++] = (uint64_t)f * frameSize_;
    }
    Refill();
    return env.Undefined();
  }

  // kick(): wake the kernel for TX and RX regardless of need_wakeup.
  Napi::Value Kick(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(xsk_ != nullptr, "socket is closed");
    WakeTx();
    Reclaim();
    Refill();
    return env.Undefined();
  }

  // startPoll(fn): fn() is called from the event loop whenever the RX ring
  // is readable (level-triggered: once per readiness, not per packet).
  Napi::Value StartPoll(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    CHECK_ARG(xsk_ != nullptr, "socket is closed");
    CHECK_TYPE(info[0].IsFunction(), "startPoll(fn) needs a function");
    if (!poll_.Start(env, fd_, info[0].As<Napi::Function>(), "strata:xsk")) return Napi::Value();
    return env.Undefined();
  }

  void StopPollNative() { poll_.Stop(); }

  Napi::Value StopPoll(const Napi::CallbackInfo &info) {
    StopPollNative();
    return info.Env().Undefined();
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
    set("txRingFull", (double)txRingFull_);
    set("rxWakeups", (double)rxWakeups_);
    set("txWakeups", (double)txWakeups_);
    set("txWakeErrors", (double)txWakeErrors_);
    set("badDescs", (double)badDescs_);
    set("allocFailed", (double)allocFailed_);
    set("pollEvents", (double)poll_.events());
    set("freeFrames", (double)freeTop_);
    set("fillOutstanding", (double)fillOutstanding_);
    set("txOutstanding", (double)txOutstanding_);
    if (fd_ >= 0) {
      xdp_statistics st = {};
      socklen_t sl = sizeof(st);
      if (getsockopt(fd_, SOL_XDP, XDP_STATISTICS, &st, &sl) == 0) {
        set("rxDropped", (double)st.rx_dropped);
        set("rxInvalidDescs", (double)st.rx_invalid_descs);
        set("txInvalidDescs", (double)st.tx_invalid_descs);
        set("rxRingFull", (double)st.rx_ring_full);
        set("rxFillRingEmptyDescs", (double)st.rx_fill_ring_empty_descs);
        set("txRingEmptyDescs", (double)st.tx_ring_empty_descs);
      }
    }
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("fd", Napi::Number::New(env, fd_));
    o.Set("ifindex", Napi::Number::New(env, ifindex_));
    o.Set("queue", Napi::Number::New(env, queue_));
    o.Set("frameSize", Napi::Number::New(env, frameSize_));
    o.Set("frameCount", Napi::Number::New(env, frameCount_));
    o.Set("zerocopy", Napi::Boolean::New(env, zerocopy_));
    o.Set("needWakeup", Napi::Boolean::New(env, needWakeup_));
    o.Set("busyPoll", Napi::Boolean::New(env, busyPoll_));
    o.Set("busyPollPrefer", Napi::Boolean::New(env, busyPrefer_));
    o.Set("busyPollUsec", Napi::Boolean::New(env, busyUsecOk_));
    o.Set("busyPollBudget", Napi::Boolean::New(env, busyBudgetOk_));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    CloseNative();
    return info.Env().Undefined();
  }

  xsk_ring_prod fill_ = {}, tx_ = {};
  xsk_ring_cons comp_ = {}, rx_ = {};
  xsk_umem *umem_ = nullptr;
  xsk_socket *xsk_ = nullptr;
  NativeArea *area_ = nullptr;
  int fd_ = -1;
  uint32_t ifindex_ = 0, queue_ = 0, frameSize_ = 4096, frameCount_ = 4096;
  bool needWakeup_ = true, busyPoll_ = false, zerocopy_ = false, open_ = false;
  bool busyPrefer_ = false, busyUsecOk_ = false, busyBudgetOk_ = false;
  std::vector<uint64_t> freeStack_;
  uint32_t freeTop_ = 0;
  std::vector<uint8_t> owner_;
  uint32_t maxKicks_ = 66;
  uint32_t frameShift_ = 12;
  uint64_t frameMask_ = 4095;
  uint32_t fillTarget_ = 0, fillOutstanding_ = 0, txOutstanding_ = 0;
  static constexpr uint32_t compBatch_ = 4096;
  // Ring sizes (entries) above this are refused up front rather than left to
  // fail as a large kernel allocation; the defaults are 2048.
  static constexpr int64_t kMaxRing = 1 << 20;
  static constexpr int kBusyRetries = 100;        // x 5 ms: half a second at most
  static constexpr useconds_t kBusyRetryUsec = 5000;
  FdPoll poll_;
  uint64_t rxPackets_ = 0, rxBytes_ = 0, txPackets_ = 0, txBytes_ = 0, txDropped_ = 0, txRingFull_ = 0;
  uint64_t rxWakeups_ = 0, txWakeups_ = 0, txWakeErrors_ = 0, badDescs_ = 0, allocFailed_ = 0;
};

Napi::Object InitXsk(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Xsk::Define(env);
  State(env)->xskCtor = Napi::Persistent(ctor);
  exports.Set("Xsk", ctor);
  return exports;
}

}  // namespace strata

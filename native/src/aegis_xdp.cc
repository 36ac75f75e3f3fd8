// Thin node-addon-api wrapper over libbpf for the Aegis XDP program.
// Validation and policy live in src/enforce/xdp*.ts; this file only moves bytes between plain
// Buffers and the kernel and turns libbpf errors into JS errors carrying `code` and `errno`.
// Anything that can touch a million entries runs on the libuv pool (AsyncWorker) and returns a
// Promise, so the daemon's event loop keeps serving logs, the socket and /metrics meanwhile.
#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "../../bpf/aegis_common.h"

namespace {

// libbpf reports details (verifier log, pin mismatches) through its print callback. Keep the
// tail so a failed load can say why instead of printing to the daemon's stderr.
std::mutex g_log_mu;
std::string g_log;

int CaptureLibbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.append(buf);
  if (g_log.size() > 8192) g_log.erase(0, g_log.size() - 8192);
  if (getenv("AEGIS_LIBBPF_DEBUG") != nullptr) fputs(buf, stderr);
  return n;
}

std::string TakeLog() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::string out;
  out.swap(g_log);
  // the last few lines are the useful ones (verifier verdict, "failed to pin")
  size_t pos = out.size();
  for (int lines = 0; lines < 6 && pos != std::string::npos && pos > 0; lines++) pos = out.rfind('\n', pos - 1);
  if (pos != std::string::npos && pos > 0) out = out.substr(pos + 1);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  // one line: error messages end up on one stderr line of the daemon
  std::string line;
  size_t start = 0;
  while (start <= out.size()) {
    size_t nl = out.find('\n', start);
    std::string part = out.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (part.rfind("libbpf: ", 0) == 0) part.erase(0, 8);
    if (!part.empty()) line += (line.empty() ? "" : "; ") + part;
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return line;
}

const char* ErrnoName(int e) {
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : "EUNKNOWN";
}

std::string Explain(int e, const std::string& what) {
  std::string msg = what + ": " + strerror(e);
  if (e == EPERM || e == EACCES)
    msg += " (needs CAP_BPF and CAP_NET_ADMIN, or root)";
  return msg;
}

Napi::Error MakeError(Napi::Env env, int e, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, ErrnoName(e)));
  err.Set("errno", Napi::Number::New(env, e));
  return err;
}

[[noreturn]] void Throw(Napi::Env env, int e, const std::string& what) {
  throw MakeError(env, e, Explain(e, what));
}

struct MapRef {
  std::string name;
  int fd = -1;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t type = 0;
};

// Errors raised on a pool thread: carried back to the main thread as errno + message.
struct OpError {
  int err = 0;
  std::string message;
  bool map_full = false;
};

void FullOrErrno(OpError* out, const MapRef& m, int e, const char* op) {
  out->err = e;
  if (e == E2BIG || e == ENOSPC) {
    out->map_full = true;
    out->message = "map " + m.name + " is full (max_entries " + std::to_string(m.max_entries) +
                   "); raise [xdp] max_entries and remove the pins to resize";
  } else {
    out->message = Explain(e, std::string(op) + " on map " + m.name);
  }
}

bool Unsupported(int e) { return e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == 524 /* ENOTSUPP */; }

// --- batched operations (run off the event loop) ---------------------------------------

size_t DoUpdate(const MapRef& m, const std::vector<uint8_t>& keys, const std::vector<uint8_t>& values,
                size_t n, OpError* out) {
  size_t done = 0;
  bool batch = true;
  while (done < n) {
    if (batch) {
      LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY, .flags = 0);
      __u32 count = static_cast<__u32>(std::min<size_t>(n - done, 65536));
      int rc = bpf_map_update_batch(m.fd, keys.data() + done * m.key_size, values.data() + done * m.value_size,
                                    &count, &opts);
      if (rc == 0) {
        done += count;
        continue;
      }
      int e = errno;
      if (Unsupported(e) && count == 0) {
        batch = false;  // map type without batch ops: fall back to single updates
        continue;
      }
      done += count;
      FullOrErrno(out, m, e, "batch update");
      return done;
    }
    if (bpf_map_update_elem(m.fd, keys.data() + done * m.key_size, values.data() + done * m.value_size, BPF_ANY) != 0) {
      FullOrErrno(out, m, errno, "update");
      return done;
    }
    done++;
  }
  return done;
}

size_t DoDelete(const MapRef& m, const std::vector<uint8_t>& keys, size_t n, OpError* out) {
  size_t off = 0, deleted = 0;
  bool batch = true;
  while (off < n) {
    if (batch) {
      LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
      __u32 count = static_cast<__u32>(std::min<size_t>(n - off, 65536));
      int rc = bpf_map_delete_batch(m.fd, keys.data() + off * m.key_size, &count, &opts);
      off += count;
      deleted += count;
      if (rc == 0) continue;
      int e = errno;
      if (e == ENOENT) {
        off++;  // a key already gone: skip it, delete the rest
        continue;
      }
      if (Unsupported(e) && count == 0) {
        batch = false;
        continue;
      }
      FullOrErrno(out, m, e, "batch delete");
      return deleted;
    }
    if (bpf_map_delete_elem(m.fd, keys.data() + off * m.key_size) == 0) {
      deleted++;
    } else if (errno != ENOENT) {
      FullOrErrno(out, m, errno, "delete");
      return deleted;
    }
    off++;
  }
  return deleted;
}

// Walks the map; with want_data the keys and values are collected, else only counted.
size_t DoDump(const MapRef& m, bool want_data, std::vector<uint8_t>* keys, std::vector<uint8_t>* values,
              OpError* out) {
  const __u32 chunk = 8192;
  std::vector<uint8_t> kbuf(static_cast<size_t>(chunk) * m.key_size);
  std::vector<uint8_t> vbuf(static_cast<size_t>(chunk) * m.value_size);
  size_t total = 0;
  // hash maps use a bucket cursor (u32), generic batch uses a key: size for the larger
  std::vector<uint8_t> in(std::max<uint32_t>(m.key_size, 8)), outb(std::max<uint32_t>(m.key_size, 8));
  bool first = true;
  for (;;) {
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = 0, .flags = 0);
    __u32 count = chunk;
    int rc = bpf_map_lookup_batch(m.fd, first ? nullptr : in.data(), outb.data(), kbuf.data(), vbuf.data(), &count,
                                  &opts);
    int e = rc == 0 ? 0 : errno;
    if (rc != 0 && e != ENOENT) {
      if (first && Unsupported(e)) break;  // fall through to get_next_key
      FullOrErrno(out, m, e, "batch lookup");
      return total;
    }
    if (want_data) {
      keys->insert(keys->end(), kbuf.begin(), kbuf.begin() + static_cast<size_t>(count) * m.key_size);
      values->insert(values->end(), vbuf.begin(), vbuf.begin() + static_cast<size_t>(count) * m.value_size);
    }
    total += count;
    if (e == ENOENT) return total;
    memcpy(in.data(), outb.data(), in.size());
    first = false;
  }
  // No batch support for this map type: walk key by key.
  std::vector<uint8_t> cur(m.key_size), next(m.key_size), val(m.value_size);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(m.fd, prev, next.data()) == 0) {
    if (bpf_map_lookup_elem(m.fd, next.data(), val.data()) == 0) {
      if (want_data) {
        keys->insert(keys->end(), next.begin(), next.end());
        values->insert(values->end(), val.begin(), val.end());
      }
      total++;
    }
    cur.swap(next);
    prev = cur.data();
  }
  if (errno != ENOENT) FullOrErrno(out, m, errno, "iterate");
  return total;
}

class MapWorker : public Napi::AsyncWorker {
 public:
  enum class Op { kUpdate, kDelete, kDump, kCount };
  MapWorker(Napi::Env env, Op op, MapRef map, std::vector<uint8_t> keys, std::vector<uint8_t> values, size_t n)
      : Napi::AsyncWorker(env), op_(op), map_(std::move(map)), keys_(std::move(keys)), values_(std::move(values)),
        n_(n), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    switch (op_) {
      case Op::kUpdate: result_ = DoUpdate(map_, keys_, values_, n_, &err_); break;
      case Op::kDelete: result_ = DoDelete(map_, keys_, n_, &err_); break;
      case Op::kDump:
        keys_.clear();
        values_.clear();
        result_ = DoDump(map_, true, &keys_, &values_, &err_);
        break;
      case Op::kCount: result_ = DoDump(map_, false, nullptr, nullptr, &err_); break;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_.err != 0) {
      Napi::Error e = MakeError(env, err_.err, err_.message);
      e.Set("map", Napi::String::New(env, map_.name));
      e.Set("done", Napi::Number::New(env, static_cast<double>(result_)));
      if (err_.map_full) {
        e.Set("mapFull", Napi::Boolean::New(env, true));
        e.Set("maxEntries", Napi::Number::New(env, map_.max_entries));
      }
      deferred_.Reject(e.Value());
      return;
    }
    if (op_ == Op::kDump) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("count", Napi::Number::New(env, static_cast<double>(result_)));
      o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys_.data(), keys_.size()));
      o.Set("values", Napi::Buffer<uint8_t>::Copy(env, values_.data(), values_.size()));
      deferred_.Resolve(o);
      return;
    }
    deferred_.Resolve(Napi::Number::New(env, static_cast<double>(result_)));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Op op_;
  MapRef map_;
  std::vector<uint8_t> keys_;
  std::vector<uint8_t> values_;
  size_t n_;
  size_t result_ = 0;
  OpError err_;
  Napi::Promise::Deferred deferred_;
};

// --- the loaded object -----------------------------------------------------------------

class Program : public Napi::ObjectWrap<Program> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Program",
                       {
                           InstanceMethod("attach", &Program::Attach),
                           InstanceMethod("detach", &Program::Detach),
                           InstanceMethod("query", &Program::Query),
                           InstanceMethod("update", &Program::Update),
                           InstanceMethod("remove", &Program::Remove),
                           InstanceMethod("dump", &Program::Dump),
                           InstanceMethod("count", &Program::Count),
                           InstanceMethod("lookup", &Program::Lookup),
                           InstanceMethod("stats", &Program::Stats),
                           InstanceMethod("maps", &Program::Maps),
                           InstanceMethod("close", &Program::Close),
                           InstanceMethod("_testRun", &Program::TestRun),
                       });
  }

  // new Program({ object, pinPath, maxEntries, rateEntries, ratePps, rateBurst })
  explicit Program(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Program>(info) {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    std::string object = o.Get("object").As<Napi::String>();
    std::string pin = o.Get("pinPath").As<Napi::String>();
    uint32_t max_entries = o.Get("maxEntries").As<Napi::Number>().Uint32Value();
    uint32_t rate_entries = o.Get("rateEntries").As<Napi::Number>().Uint32Value();
    double pps = o.Get("ratePps").As<Napi::Number>().DoubleValue();
    double burst = o.Get("rateBurst").As<Napi::Number>().DoubleValue();

    TakeLog();
    LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin.c_str());
    obj_ = bpf_object__open_file(object.c_str(), &oo);
    if (obj_ == nullptr) {
      int e = errno;
      std::string why = TakeLog();
      throw MakeError(env, e, Explain(e, "cannot open BPF object " + object) + (why.empty() ? "" : ": " + why));
    }

    adopted_ = Napi::Persistent(Napi::Array::New(env));
    notes_ = Napi::Persistent(Napi::Array::New(env));
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      std::string name = bpf_map__name(map);
      if (name.rfind("aegis_", 0) != 0) continue;
      uint32_t want = bpf_map__max_entries(map);
      if (name == AEGIS_MAP_BAN_V4 || name == AEGIS_MAP_BAN_V6 || name == AEGIS_MAP_CIDR_V4 ||
          name == AEGIS_MAP_CIDR_V6)
        want = max_entries;
      else if (name == AEGIS_MAP_RATE)
        want = rate_entries;
      // A pinned map keeps its size: resizing would drop the bans it holds. Adopt it as is.
      std::string path = pin + "/" + name;
      int pfd = bpf_obj_get(path.c_str());
      if (pfd >= 0) {
        struct bpf_map_info mi = {};
        __u32 len = sizeof mi;
        if (bpf_obj_get_info_by_fd(pfd, &mi, &len) == 0 && mi.max_entries != want && name != AEGIS_MAP_STATS) {
          notes_.Value().Set(notes_.Value().Length(),
                             Napi::String::New(env, "pinned map " + name + " keeps max_entries " +
                                                        std::to_string(mi.max_entries) + " (configured " +
                                                        std::to_string(want) + "); remove " + path + " to resize"));
          want = mi.max_entries;
        }
        close(pfd);
        adopted_.Value().Set(adopted_.Value().Length(), Napi::String::New(env, name));
      }
      if (name != AEGIS_MAP_STATS) bpf_map__set_max_entries(map, want);
    }

    SetConfig(env, pps, burst);

    if (bpf_object__load(obj_) != 0) {
      int e = errno;
      std::string why = TakeLog();
      bpf_object__close(obj_);
      obj_ = nullptr;
      throw MakeError(env, e, Explain(e, "cannot load the XDP program") + (why.empty() ? "" : ": " + why));
    }
    struct bpf_program* prog = bpf_object__find_program_by_name(obj_, AEGIS_PROG_NAME);
    prog_fd_ = prog != nullptr ? bpf_program__fd(prog) : -1;
    if (prog_fd_ < 0) {
      bpf_object__close(obj_);
      obj_ = nullptr;
      throw MakeError(env, ENOENT, "program " AEGIS_PROG_NAME " not found in " + object);
    }
    struct bpf_prog_info pi = {};
    __u32 len = sizeof pi;
    if (bpf_obj_get_info_by_fd(prog_fd_, &pi, &len) == 0) prog_id_ = pi.id;
    Value().Set("progId", Napi::Number::New(env, prog_id_));
    Value().Set("adopted", adopted_.Value());
    Value().Set("notes", notes_.Value());
  }

  ~Program() override {
    if (obj_ != nullptr) bpf_object__close(obj_);
  }

 private:
  void SetConfig(Napi::Env env, double pps, double burst) {
    struct aegis_config cfg = {};
    if (pps > 0 && burst >= 1) {
      cfg.rate_pps = static_cast<__u64>(pps);
      cfg.rate_burst_tokens = static_cast<__u64>(burst) * 1000000000ULL;
      cfg.rate_fill_ns = cfg.rate_burst_tokens / cfg.rate_pps;
    }
    struct bpf_map* ro = bpf_object__find_map_by_name(obj_, ".rodata");
    if (ro == nullptr) {
      if (cfg.rate_pps == 0) return;  // nothing to set; clang dropped an all-zero .rodata
      throw MakeError(env, ENOENT, "BPF object has no .rodata: rebuild bpf/");
    }
    size_t size = 0;
    const void* init = bpf_map__initial_value(ro, &size);
    std::vector<uint8_t> data(static_cast<const uint8_t*>(init), static_cast<const uint8_t*>(init) + size);
    // find aegis_cfg's offset inside .rodata through BTF rather than assuming it is first
    struct btf* btf = bpf_object__btf(obj_);
    int sec = btf != nullptr ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -1;
    if (sec < 0) throw MakeError(env, ENOENT, "BPF object has no BTF for .rodata: rebuild bpf/ with -g");
    const struct btf_type* t = btf__type_by_id(btf, sec);
    const struct btf_var_secinfo* vs = btf_var_secinfos(t);
    for (int i = 0; i < btf_vlen(t); i++, vs++) {
      const struct btf_type* var = btf__type_by_id(btf, vs->type);
      if (strcmp(btf__name_by_offset(btf, var->name_off), "aegis_cfg") != 0) continue;
      if (vs->offset + sizeof cfg > data.size()) break;
      memcpy(data.data() + vs->offset, &cfg, sizeof cfg);
      if (bpf_map__set_initial_value(ro, data.data(), data.size()) != 0) Throw(env, errno, "set XDP knobs");
      return;
    }
    throw MakeError(env, ENOENT, "aegis_cfg not found in BPF object: rebuild bpf/");
  }

  void Live(Napi::Env env) {
    if (obj_ == nullptr) throw MakeError(env, EBADF, "XDP program already closed");
  }

  MapRef Map(Napi::Env env, const Napi::Value& v) {
    Live(env);
    std::string name = v.As<Napi::String>();
    struct bpf_map* m = bpf_object__find_map_by_name(obj_, name.c_str());
    if (m == nullptr) throw MakeError(env, ENOENT, "no map named " + name);
    MapRef r;
    r.name = name;
    r.fd = bpf_map__fd(m);
    r.key_size = bpf_map__key_size(m);
    r.value_size = bpf_map__value_size(m);
    r.max_entries = bpf_map__max_entries(m);
    r.type = bpf_map__type(m);
    return r;
  }

  static std::vector<uint8_t> Bytes(const Napi::Value& v) {
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
  }

  int IfIndex(Napi::Env env, const std::string& ifname) {
    unsigned idx = if_nametoindex(ifname.c_str());
    if (idx == 0) throw MakeError(env, ENODEV, "no network interface named " + ifname);
    return static_cast<int>(idx);
  }

  // name of an attached program, to tell ours from someone else's
  static std::string ProgName(__u32 id) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) return "";
    struct bpf_prog_info pi = {};
    __u32 len = sizeof pi;
    std::string name = bpf_obj_get_info_by_fd(fd, &pi, &len) == 0 ? pi.name : "";
    close(fd);
    return name;
  }

  // attach(ifname, 'auto'|'native'|'generic') -> { ifindex, mode, replaced }
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    std::string ifname = info[0].As<Napi::String>();
    std::string want = info[1].As<Napi::String>();
    int ifindex = IfIndex(env, ifname);

    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q) != 0) Throw(env, errno, "query XDP on " + ifname);
    __u32 old_id = q.drv_prog_id != 0 ? q.drv_prog_id : q.skb_prog_id;
    __u32 old_flag = q.drv_prog_id != 0 ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    Napi::Object out = Napi::Object::New(env);
    out.Set("ifindex", Napi::Number::New(env, ifindex));
    if (q.hw_prog_id != 0 || (q.drv_prog_id != 0 && q.skb_prog_id != 0))
      throw MakeError(env, EBUSY, ifname + " has XDP programs in several modes; detach them first (ip link set dev " +
                                      ifname + " xdp off; ip link set dev " + ifname + " xdpgeneric off)");
    if (old_id != 0) {
      std::string name = ProgName(old_id);
      if (name != AEGIS_PROG_NAME)
        throw MakeError(env, EBUSY, ifname + " already runs XDP program '" + name + "' (id " + std::to_string(old_id) +
                                        ") that Aegis did not load; Aegis will not replace it");
      // A previous aegisd's program (crash, restart): swap atomically, same mode, no gap.
      int old_fd = bpf_prog_get_fd_by_id(old_id);
      LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = old_fd);
      int rc = bpf_xdp_attach(ifindex, prog_fd_, old_flag | XDP_FLAGS_REPLACE, &ao);
      int e = errno;
      if (old_fd >= 0) close(old_fd);
      if (rc != 0) Throw(env, e, "replace the XDP program on " + ifname);
      out.Set("mode", Napi::String::New(env, old_flag == XDP_FLAGS_DRV_MODE ? "native" : "generic"));
      out.Set("replaced", Napi::Number::New(env, old_id));
      return out;
    }
    int native_err = 0;
    if (want != "generic") {
      if (bpf_xdp_attach(ifindex, prog_fd_, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) == 0) {
        out.Set("mode", Napi::String::New(env, "native"));
        out.Set("replaced", env.Null());
        return out;
      }
      native_err = errno;
      if (want == "native") Throw(env, native_err, "attach XDP in native mode to " + ifname);
    }
    if (bpf_xdp_attach(ifindex, prog_fd_, XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) != 0)
      Throw(env, errno, "attach XDP in generic mode to " + ifname);
    out.Set("mode", Napi::String::New(env, "generic"));
    out.Set("replaced", env.Null());
    if (native_err != 0)
      out.Set("nativeError", Napi::String::New(env, std::string(ErrnoName(native_err)) + ": " + strerror(native_err)));
    return out;
  }

  // detach(ifname) -> true when our program was removed; never touches anyone else's
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    std::string ifname = info[0].As<Napi::String>();
    unsigned ifindex = if_nametoindex(ifname.c_str());
    if (ifindex == 0) return Napi::Boolean::New(env, false);
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) != 0) Throw(env, errno, "query XDP on " + ifname);
    __u32 flag = 0;
    if (q.drv_prog_id == prog_id_) flag = XDP_FLAGS_DRV_MODE;
    else if (q.skb_prog_id == prog_id_) flag = XDP_FLAGS_SKB_MODE;
    if (flag == 0 || prog_id_ == 0) return Napi::Boolean::New(env, false);
    LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = prog_fd_);
    if (bpf_xdp_detach(static_cast<int>(ifindex), flag | XDP_FLAGS_REPLACE, &ao) != 0)
      Throw(env, errno, "detach XDP from " + ifname);
    return Napi::Boolean::New(env, true);
  }

  // query(ifname) -> { progId, name, mode, ours } | null
  Napi::Value Query(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string ifname = info[0].As<Napi::String>();
    int ifindex = IfIndex(env, ifname);
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q) != 0) Throw(env, errno, "query XDP on " + ifname);
    __u32 id = q.drv_prog_id != 0 ? q.drv_prog_id : q.skb_prog_id != 0 ? q.skb_prog_id : q.hw_prog_id;
    if (id == 0) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("progId", Napi::Number::New(env, id));
    o.Set("name", Napi::String::New(env, ProgName(id)));
    o.Set("mode", Napi::String::New(env, q.drv_prog_id != 0 ? "native" : q.skb_prog_id != 0 ? "generic" : "offload"));
    o.Set("ours", Napi::Boolean::New(env, id == prog_id_));
    return o;
  }

  // update(map, keys, values) -> Promise<number>
  Napi::Value Update(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    MapRef m = Map(env, info[0]);
    std::vector<uint8_t> keys = Bytes(info[1]);
    std::vector<uint8_t> values = Bytes(info[2]);
    size_t n = keys.size() / m.key_size;
    if (keys.size() % m.key_size != 0 || values.size() != n * m.value_size)
      throw MakeError(env, EINVAL, "update " + m.name + ": key/value buffers do not match the map layout");
    auto* w = new MapWorker(env, MapWorker::Op::kUpdate, m, std::move(keys), std::move(values), n);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // remove(map, keys) -> Promise<number deleted>
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    MapRef m = Map(env, info[0]);
    std::vector<uint8_t> keys = Bytes(info[1]);
    if (keys.size() % m.key_size != 0)
      throw MakeError(env, EINVAL, "remove from " + m.name + ": key buffer does not match the map layout");
    size_t n = keys.size() / m.key_size;
    auto* w = new MapWorker(env, MapWorker::Op::kDelete, m, std::move(keys), {}, n);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // dump(map) -> Promise<{ count, keys, values }>
  Napi::Value Dump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    MapRef m = Map(env, info[0]);
    auto* w = new MapWorker(env, MapWorker::Op::kDump, m, {}, {}, 0);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // count(map) -> Promise<number>
  Napi::Value Count(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    MapRef m = Map(env, info[0]);
    auto* w = new MapWorker(env, MapWorker::Op::kCount, m, {}, {}, 0);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // lookup(map, key) -> Buffer | null
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    MapRef m = Map(env, info[0]);
    std::vector<uint8_t> key = Bytes(info[1]);
    if (key.size() != m.key_size) throw MakeError(env, EINVAL, "lookup in " + m.name + ": wrong key size");
    std::vector<uint8_t> val(m.value_size);
    if (bpf_map_lookup_elem(m.fd, key.data(), val.data()) != 0) {
      if (errno == ENOENT) return env.Null();
      Throw(env, errno, "lookup in " + m.name);
    }
    return Napi::Buffer<uint8_t>::Copy(env, val.data(), val.size());
  }

  // stats() -> number[AEGIS_STAT_MAX], each summed over CPUs
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    MapRef m = Map(env, Napi::String::New(env, AEGIS_MAP_STATS));
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) Throw(env, -ncpu, "count CPUs");
    std::vector<__u64> per(static_cast<size_t>(ncpu));
    Napi::Array out = Napi::Array::New(env, AEGIS_STAT_MAX);
    for (__u32 slot = 0; slot < AEGIS_STAT_MAX; slot++) {
      if (bpf_map_lookup_elem(m.fd, &slot, per.data()) != 0) Throw(env, errno, "read XDP counters");
      __u64 sum = 0;
      for (__u64 v : per) sum += v;
      out.Set(slot, Napi::Number::New(env, static_cast<double>(sum)));
    }
    return out;
  }

  // maps() -> { name: { maxEntries, keySize, valueSize, id } }
  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    Napi::Object out = Napi::Object::New(env);
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) {
      std::string name = bpf_map__name(map);
      if (name.rfind("aegis_", 0) != 0) continue;
      Napi::Object o = Napi::Object::New(env);
      o.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(map)));
      o.Set("keySize", Napi::Number::New(env, bpf_map__key_size(map)));
      o.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(map)));
      struct bpf_map_info mi = {};
      __u32 len = sizeof mi;
      if (bpf_obj_get_info_by_fd(bpf_map__fd(map), &mi, &len) == 0) o.Set("id", Napi::Number::New(env, mi.id));
      out.Set(name, o);
    }
    return out;
  }

  // close(): drops our fds. An attached program stays attached (the kernel holds it) and
  // pinned maps stay pinned: that is what keeps bans in force while no daemon runs.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (obj_ != nullptr) {
      bpf_object__close(obj_);
      obj_ = nullptr;
      prog_fd_ = -1;
    }
    return info.Env().Undefined();
  }

  // _testRun(frame, repeat) -> { retval, duration } (duration: mean ns per run). Tests, bench.
  Napi::Value TestRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    Napi::Buffer<uint8_t> frame = info[0].As<Napi::Buffer<uint8_t>>();
    int repeat = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : 1;
    std::vector<uint8_t> out(frame.Length() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.Data(), .data_out = out.data(),
                .data_size_in = static_cast<__u32>(frame.Length()), .data_size_out = static_cast<__u32>(out.size()),
                .repeat = repeat);
    if (bpf_prog_test_run_opts(prog_fd_, &o) != 0) Throw(env, errno, "BPF_PROG_TEST_RUN");
    Napi::Object r = Napi::Object::New(env);
    r.Set("retval", Napi::Number::New(env, o.retval));
    r.Set("duration", Napi::Number::New(env, o.duration));
    return r;
  }

  struct bpf_object* obj_ = nullptr;
  int prog_fd_ = -1;
  __u32 prog_id_ = 0;
  Napi::Reference<Napi::Array> adopted_;
  Napi::Reference<Napi::Array> notes_;
};

// clocks() -> [bootNs, realtimeNs] read back to back, to map epoch expiries onto
// bpf_ktime_get_boot_ns (see bpf/aegis_common.h)
Napi::Value Clocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct timespec b, r;
  clock_gettime(CLOCK_BOOTTIME, &b);
  clock_gettime(CLOCK_REALTIME, &r);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::BigInt::New(env, static_cast<uint64_t>(static_cast<uint64_t>(b.tv_sec) * 1000000000ULL + static_cast<uint64_t>(b.tv_nsec))));
  out.Set(1u, Napi::BigInt::New(env, static_cast<uint64_t>(static_cast<uint64_t>(r.tv_sec) * 1000000000ULL + static_cast<uint64_t>(r.tv_nsec))));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLibbpf);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  exports.Set("Program", Program::Init(env));
  exports.Set("clocks", Napi::Function::New(env, Clocks));
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("passV4", Napi::Number::New(env, AEGIS_STAT_PASS_V4));
  stats.Set("dropV4", Napi::Number::New(env, AEGIS_STAT_DROP_V4));
  stats.Set("passV6", Napi::Number::New(env, AEGIS_STAT_PASS_V6));
  stats.Set("dropV6", Napi::Number::New(env, AEGIS_STAT_DROP_V6));
  stats.Set("dropBlocklist", Napi::Number::New(env, AEGIS_STAT_DROP_BLOCKLIST));
  stats.Set("dropCidr", Napi::Number::New(env, AEGIS_STAT_DROP_CIDR));
  stats.Set("dropRateLimit", Napi::Number::New(env, AEGIS_STAT_DROP_RATE_LIMIT));
  stats.Set("passOther", Napi::Number::New(env, AEGIS_STAT_PASS_OTHER));
  stats.Set("allowHit", Napi::Number::New(env, AEGIS_STAT_ALLOW_HIT));
  exports.Set("statSlots", stats);
  exports.Set("libbpfVersion", Napi::String::New(env, libbpf_version_string()));
  return exports;
}

}  // namespace

NODE_API_MODULE(aegis_xdp, Init)

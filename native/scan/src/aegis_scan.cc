// Raw-buffer line scanning for the match engine (src/engine/match/native-scan.ts): counting the
// lines of a batch and finding the lines that contain a filter's literals, in one native call
// per batch instead of one Buffer.indexOf call per line. SSE2 compares run at several GB/s;
// Buffer.indexOf's Boyer-Moore-Horspool plus the binding cost of a million calls was a third of
// a worker's time on a JSON API log.
//
// Plain functions over caller-owned memory: no state, safe in every worker thread.
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace {

struct Bytes {
  const uint8_t* data = nullptr;
  size_t length = 0;
};

// a Uint8Array's bytes (over an ArrayBuffer or a SharedArrayBuffer), or an error thrown
bool BytesOf(const Napi::Env& env, const Napi::Value& v, Bytes* out, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, std::string(what) + " must be a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  auto a = v.As<Napi::Uint8Array>();
  out->data = a.Data();
  out->length = a.ElementLength();
  return true;
}

size_t CountNewlines(const uint8_t* p, size_t n) {
  size_t count = 0;
  size_t i = 0;
#if defined(__SSE2__)
  // 16 lanes of byte counters, emptied every 255 blocks before they can wrap
  const __m128i nl = _mm_set1_epi8('\n');
  while (i + 16 <= n) {
    __m128i acc = _mm_setzero_si128();
    for (int b = 0; b < 255 && i + 16 <= n; b++, i += 16)
      acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), nl));
    const __m128i sums = _mm_sad_epu8(acc, _mm_setzero_si128());
    count += static_cast<size_t>(_mm_cvtsi128_si32(sums)) + static_cast<size_t>(_mm_extract_epi16(sums, 4));
  }
#endif
  for (; i < n; i++) count += p[i] == '\n';
  return count;
}

// countLines(buf) → newline bytes in buf
Napi::Value CountLines(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes buf;
  if (!BytesOf(env, info[0], &buf, "buf")) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(CountNewlines(buf.data, buf.length)));
}

// countSkippable(buf) → lines of buf (split at newlines; a last line may lack one) that
// fail2ban-regex skips: blank (spaces, tabs, CR only) or starting with '#'
Napi::Value CountSkippable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes buf;
  if (!BytesOf(env, info[0], &buf, "buf")) return env.Undefined();
  const uint8_t* p = buf.data;
  const size_t len = buf.length;
  size_t count = 0;
  size_t start = 0;
  while (start < len) {
    const void* nlp = memchr(p + start, '\n', len - start);
    const size_t end = nlp == nullptr ? len : static_cast<size_t>(static_cast<const uint8_t*>(nlp) - p);
    bool skip = end > start && p[start] == '#';
    if (!skip) {
      skip = true;
      for (size_t i = start; i < end; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
          skip = false;
          break;
        }
      }
    }
    count += skip;
    start = end + 1;
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

#if defined(__SSE2__)
// Many needles: the first position at or after `pos` where any needle starts, or len, in one
// pass over the bytes for all of them (SSE2, 16 positions at a time): a position is a candidate
// for a needle when its first and last bytes are there, then memcmp decides. memmem would take
// one pass per needle — 18 for the stock sshd filter's literals.
class SimdFinder {
 public:
  SimdFinder(const uint8_t* p, size_t len, const std::vector<Bytes>& needles, size_t /*from*/)
      : p_(p), len_(len), needles_(needles) {
    for (const Bytes& n : needles) {
      first_.push_back(_mm_set1_epi8(static_cast<char>(n.data[0])));
      last_.push_back(_mm_set1_epi8(static_cast<char>(n.data[n.length - 1])));
      if (n.length > longest_) longest_ = n.length;
    }
  }

  size_t Next(size_t pos) const {
    size_t i = pos;
    // whole blocks: every needle's last-byte load stays inside the buffer
    for (; i + longest_ + 15 <= len_; i += 16) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_ + i));
      size_t best = 16;
      for (size_t k = 0; k < needles_.size(); k++) {
        const Bytes& n = needles_[k];
        const __m128i tail = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_ + i + n.length - 1));
        unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(block, first_[k]), _mm_cmpeq_epi8(tail, last_[k]))));
        // only positions before the best hit of this block so far can improve it
        mask &= (1u << best) - 1;
        while (mask != 0) {
          const unsigned bit = static_cast<unsigned>(__builtin_ctz(mask));
          if (n.length <= 2 || memcmp(p_ + i + bit + 1, n.data + 1, n.length - 2) == 0) {
            best = bit;
            break;
          }
          mask &= mask - 1;
        }
      }
      if (best < 16) return i + best;
    }
    // the last few bytes, position by position
    for (; i < len_; i++) {
      for (const Bytes& n : needles_) {
        if (i + n.length <= len_ && p_[i] == n.data[0] && memcmp(p_ + i, n.data, n.length) == 0) return i;
      }
    }
    return len_;
  }

 private:
  const uint8_t* p_;
  const size_t len_;
  const std::vector<Bytes>& needles_;
  // (std::vector drops __m128i's alignment attribute; only aligned loads would care)
  std::vector<__m128i> first_;
  std::vector<__m128i> last_;
  size_t longest_ = 0;
};
#endif

// A few needles (a JSON filter's event names): glibc's memmem per needle, remembering each
// needle's next hit — faster than the SIMD pass when first and last bytes are common letters.
// Searches go a window at a time, so a needle that is rare or absent costs one pass over the
// buffer in all, and a call that stops early (out full) has not searched far ahead for nothing.
class MemmemFinder {
 public:
  MemmemFinder(const uint8_t* p, size_t len, const std::vector<Bytes>& needles, size_t from)
      : p_(p), len_(len), needles_(needles), next_(needles.size(), kNone), until_(needles.size(), from) {}

  size_t Next(size_t pos) {
    // hits before pos are spent; searched ranges start at pos
    for (size_t i = 0; i < needles_.size(); i++) {
      if (next_[i] != kNone && next_[i] < pos) next_[i] = kNone;
      if (next_[i] == kNone && until_[i] < pos) until_[i] = pos;
    }
    for (;;) {
      // the needle bounding the earliest possible hit: a known hit wins a tie
      size_t best = len_;
      size_t which = 0;
      bool isHit = false;
      for (size_t i = 0; i < needles_.size(); i++) {
        const bool known = next_[i] != kNone;
        const size_t bound = known ? next_[i] : until_[i];
        if (bound < best || (bound == best && known && !isHit)) {
          best = bound;
          which = i;
          isHit = known;
        }
      }
      if (best >= len_ || isHit) return best >= len_ ? len_ : best;
      const Bytes& n = needles_[which];
      const size_t from = until_[which];
      const size_t to = from + kWindow < len_ ? from + kWindow : len_;
      const size_t reach = to + n.length - 1 < len_ ? to + n.length - 1 : len_;
      const void* h = reach - from >= n.length ? memmem(p_ + from, reach - from, n.data, n.length) : nullptr;
      if (h != nullptr) next_[which] = static_cast<size_t>(static_cast<const uint8_t*>(h) - p_);
      else until_[which] = to;
    }
  }

 private:
  static constexpr size_t kNone = SIZE_MAX;
  static constexpr size_t kWindow = 64 * 1024;
  const uint8_t* p_;
  const size_t len_;
  const std::vector<Bytes>& needles_;
  std::vector<size_t> next_;
  std::vector<size_t> until_;
};

// needles up to this many are searched with memmem, more in one SIMD pass
constexpr size_t kMemmemNeedles = 4;

template <typename Finder>
size_t Collect(const uint8_t* p, size_t len, const std::vector<Bytes>& needles, size_t pos, int32_t* o, size_t capacity) {
  Finder finder(p, len, needles, pos);
  size_t written = 0;
  while (pos < len && written < capacity) {
    const size_t hit = finder.Next(pos);
    if (hit >= len) break;
    const void* before = memrchr(p + pos, '\n', hit - pos);
    const size_t start = before == nullptr ? pos : static_cast<size_t>(static_cast<const uint8_t*>(before) - p) + 1;
    const void* after = memchr(p + hit, '\n', len - hit);
    const size_t end = after == nullptr ? len : static_cast<size_t>(static_cast<const uint8_t*>(after) - p);
    o[2 * written] = static_cast<int32_t>(start);
    o[2 * written + 1] = static_cast<int32_t>(end);
    written++;
    pos = end + 1;
  }
  return written;
}

// findLines(buf, from, needles, out) → pairs written. The lines of buf[from..] holding at least
// one needle, in order, each once: out[2k] = first byte, out[2k + 1] = the newline ending it (or
// buf.length). Stops when out is full; the caller resumes after the last line written. `from`
// must be the start of a line.
Napi::Value FindLines(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes buf;
  if (!BytesOf(env, info[0], &buf, "buf")) return env.Undefined();
  if (!info[1].IsNumber() || !info[2].IsArray() || !info[3].IsTypedArray() ||
      info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(env, "findLines(buf, from, needles[], out: Int32Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t len = buf.length;
  const double fromArg = info[1].As<Napi::Number>().DoubleValue();
  if (!(fromArg >= 0) || fromArg > static_cast<double>(len) || len > INT32_MAX) {
    Napi::RangeError::New(env, "from out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto list = info[2].As<Napi::Array>();
  std::vector<Bytes> needles(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    if (!BytesOf(env, list.Get(i), &needles[i], "needle")) return env.Undefined();
    if (needles[i].length == 0) {
      Napi::RangeError::New(env, "empty needle").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  auto out = info[3].As<Napi::Int32Array>();
  const size_t capacity = out.ElementLength() / 2;
  int32_t* o = out.Data();

  const size_t from = static_cast<size_t>(fromArg);
#if defined(__SSE2__)
  const size_t written = needles.size() > kMemmemNeedles ? Collect<SimdFinder>(buf.data, len, needles, from, o, capacity)
                                                          : Collect<MemmemFinder>(buf.data, len, needles, from, o, capacity);
#else
  const size_t written = Collect<MemmemFinder>(buf.data, len, needles, from, o, capacity);
#endif
  return Napi::Number::New(env, static_cast<double>(written));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("countLines", Napi::Function::New(env, CountLines, "countLines"));
  exports.Set("findLines", Napi::Function::New(env, FindLines, "findLines"));
  exports.Set("countSkippable", Napi::Function::New(env, CountSkippable, "countSkippable"));
  return exports;
}

}  // namespace

NODE_API_MODULE(aegis_scan, Init)

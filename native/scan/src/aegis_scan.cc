// Raw-buffer line scanning for the match engine (src/engine/match/native-scan.ts): counting the
// lines of a batch and finding the lines that contain a filter's literals, in one native call
// per batch instead of one Buffer.indexOf call per line. glibc's memmem and a loop the compiler
// vectorises run at several GB/s; Buffer.indexOf's Boyer-Moore-Horspool plus the binding cost of
// a million calls was a third of a worker's time on a JSON API log.
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

  const uint8_t* p = buf.data;
  // next hit of each needle at or after pos; len when there is none left
  std::vector<size_t> next(needles.size(), 0);
  std::vector<bool> fresh(needles.size(), true);
  size_t pos = static_cast<size_t>(fromArg);
  size_t written = 0;
  while (pos < len && written < capacity) {
    size_t hit = len;
    for (size_t i = 0; i < needles.size(); i++) {
      if (fresh[i] || (next[i] < pos)) {
        const void* h = memmem(p + pos, len - pos, needles[i].data, needles[i].length);
        next[i] = h == nullptr ? len : static_cast<size_t>(static_cast<const uint8_t*>(h) - p);
        fresh[i] = false;
      }
      if (next[i] < hit) hit = next[i];
    }
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
  return Napi::Number::New(env, static_cast<double>(written));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("countLines", Napi::Function::New(env, CountLines, "countLines"));
  exports.Set("findLines", Napi::Function::New(env, FindLines, "findLines"));
  return exports;
}

}  // namespace

NODE_API_MODULE(aegis_scan, Init)

// A first conv layer on 1-channel images, its activation and its pooling, as
// one MXNet operator (MXNet's extension API, lib_api.h): LeNet's first block.
//
// oneDNN has no fast kernel for a convolution with one input channel and six
// filters, and runs the activation and the pooling as separate passes over a
// 256x6x28x28 map. Here a whole image stays in L1: the conv, activation and
// pooling in one pass forward; pooling's and the activation's gradients and
// the weight gradient in one pass backward, recomputing the activations
// (keeping them instead gained 2.5% of a LeNet step: the memory traffic costs
// about what the recomputation does).
//
//   inputs   x (N, 1, H, W), weight (C, 1, k, k), bias (C,)
//   output   y (N, C_out, H'/s, W'/s): the pooled maps, C_out >= C (the maps
//            past C are zeros: the next conv's input channels padded to
//            oneDNN's block)
//   attrs    pad, act (sigmoid | relu | identity), pool (max | avg),
//            pool_size (= stride, no padding, dividing 32), out_channels (C_out)
//
// Work is split over images (OpenMP, as many threads as MXNet gives its
// operators); the weight gradient's per-thread sums are added in a fixed order.
//
// Same function as Convolution + Activation + Pooling up to float rounding
// (summation order; exp is a polynomial within 2 ulp). NaN propagates. The
// gradient of x is not computed (zeros): the graph feeds x through BlockGrad.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lib_api.h"

using namespace mxnet::ext;

namespace {

struct Params {
  int pad, pool_size, out_channels;
  enum { kSigmoid, kRelu, kIdentity } act;
  bool max_pool;
};

bool parse(const std::unordered_map<std::string, std::string>& attrs, Params* p) {
  try {
    p->pad = std::stoi(attrs.at("pad"));
    p->pool_size = std::stoi(attrs.at("pool_size"));
    p->out_channels = std::stoi(attrs.at("out_channels"));
    const std::string& act = attrs.at("act");
    const std::string& pool = attrs.at("pool");
    if (act == "sigmoid") p->act = Params::kSigmoid;
    else if (act == "relu") p->act = Params::kRelu;
    else if (act == "identity") p->act = Params::kIdentity;
    else return false;
    if (pool != "max" && pool != "avg") return false;
    p->max_pool = pool == "max";
  } catch (...) {
    return false;
  }
  return p->pad >= 0 && p->pool_size >= 1;
}

// exp(t) for t <= 0 (t = -|z|): Cody-Waite reduction and a degree-6
// polynomial, written so that the compiler vectorizes the loops calling it.
inline float exp_nonpositive(float t) {
  t = t < -87.0f ? -87.0f : t;  // exp(-87) is still a normal float
  const float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  float r = t - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float z) {
  const float e = exp_nonpositive(-std::fabs(z));
  const float s = (z >= 0.0f ? 1.0f : e) / (1.0f + e);
  return z != z ? z : s;
}

inline float relu(float z) { return z > 0.0f || z != z ? z : 0.0f; }

// The activation of n values in place; one loop per kind, so that each vectorizes.
inline void activate(float* v, int64_t n, int act) {
  if (act == Params::kSigmoid) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) v[j] = sigmoid(v[j]);
  } else if (act == Params::kRelu) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) v[j] = relu(v[j]);
  }
}

// max that keeps a NaN (a NaN loss has to stay visible)
inline float larger(float u, float v) { return u > v || u != u ? u : v; }

// d activation / dz, from the activation's value a
inline float slope(float a, int act) {
  if (act == Params::kSigmoid) return a * (1.0f - a);
  if (act == Params::kRelu) return a > 0.0f ? 1.0f : 0.0f;
  return 1.0f;
}

struct Shapes {
  int64_t n, h, w, c, k, hp, wp, ho, wo, py, px;  // hp, wp: padded input; ho, wo: conv out
  Shapes(const MXTensor& x, const MXTensor& weight, const Params& p)
      : n(x.shape[0]), h(x.shape[2]), w(x.shape[3]), c(weight.shape[0]), k(weight.shape[2]),
        hp(h + 2 * p.pad), wp(w + 2 * p.pad), ho(hp - k + 1), wo(wp - k + 1),
        py(ho / p.pool_size), px(wo / p.pool_size) {}
};

// Register tiles: kCols output columns of kGroup filters stay in registers
// while the k*k taps stream past (2 zmm or 4 ymm per filter); the weight
// gradient keeps one row of taps (k columns) of partial sums per filter.
// Maps are stored in rows of whole tiles; the columns past wo are ignored.
#ifdef __AVX512F__
constexpr int64_t kGroup = 6;  // 12 of 32 zmm registers
#else
constexpr int64_t kGroup = 3;  // 12 of 16 ymm registers
#endif
constexpr int64_t kCols = 32, kMaxK = 11;  // kernels.py: TILE, MAX_KERNEL

inline int64_t tiled(int64_t n) { return (n + kCols - 1) / kCols * kCols; }

// The image with its zero border; rows are padded so that a full tile of
// kCols columns can be read from any tap.
struct Padded {
  int64_t stride;
  std::vector<float> data;
  explicit Padded(const Shapes& s) : stride(tiled(s.wo) + s.k), data(s.hp * stride + kCols, 0.f) {}
  void load(const float* x, const Shapes& s, int pad) {
    for (int64_t i = 0; i < s.h; ++i)
      std::copy(x + i * s.w, x + (i + 1) * s.w, data.data() + (i + pad) * stride + pad);
  }
  const float* row(int64_t i) const { return data.data() + i * stride; }
};

// The weights as [tap][filter] and the biases, filters padded with zeros to a
// multiple of kGroup.
struct Filters {
  int64_t count;  // padded
  std::vector<float> taps, bias;
  Filters(MXTensor& weight, MXTensor& bias_in, const Shapes& s)
      : count((s.c + kGroup - 1) / kGroup * kGroup), taps(s.k * s.k * count, 0.0f),
        bias(count, 0.0f) {
    for (int64_t f = 0; f < s.c; ++f) {
      for (int64_t t = 0; t < s.k * s.k; ++t)
        taps[t * count + f] = weight.data<float>()[f * s.k * s.k + t];
      bias[f] = bias_in.data<float>()[f];
    }
  }
};

// One image's activations a (c, ho, tiled(wo)) from its padded copy.
// K (and Q below): the kernel (pooling) size at compile time, 0 for any.
template <int K>
void conv_act(const Padded& xp, const Filters& w, const Shapes& s, int act, float* a) {
  const int64_t k = K ? K : s.k, as = tiled(s.wo);
  for (int64_t r = 0; r < s.ho; ++r)
    for (int64_t c0 = 0; c0 < as; c0 += kCols)
      for (int64_t g = 0; g < w.count; g += kGroup) {
        float acc[kGroup][kCols];
        for (int64_t u = 0; u < kGroup; ++u)
          for (int64_t j = 0; j < kCols; ++j) acc[u][j] = w.bias[g + u];
        for (int64_t di = 0; di < k; ++di) {
          const float* src = xp.row(r + di) + c0;
          for (int64_t dj = 0; dj < k; ++dj) {
            const float* wv = w.taps.data() + (di * k + dj) * w.count + g;
            for (int64_t u = 0; u < kGroup; ++u)
#pragma omp simd
              for (int64_t j = 0; j < kCols; ++j) acc[u][j] += wv[u] * src[j + dj];
          }
        }
        for (int64_t u = 0; u < kGroup && g + u < s.c; ++u) {
          activate(acc[u], kCols, act);
          std::copy(acc[u], acc[u] + kCols, a + ((g + u) * s.ho + r) * as + c0);
        }
      }
}

// One map's pooled rows (py, px) from its activations (ho, tiled(wo)).
template <int Q>
void pool(const float* a, const Shapes& s, int64_t q_runtime, bool max_pool, float* out) {
  const int64_t q = Q ? Q : q_runtime, as = tiled(s.wo);
  const float scale = 1.0f / static_cast<float>(q * q);
  for (int64_t r = 0; r < s.py; ++r)
    for (int64_t c0 = 0; c0 < as; c0 += kCols) {
      float v[kCols], h[kCols];  // down the window's rows, then across its columns
      const float* rows = a + r * q * as + c0;
      std::copy(rows, rows + kCols, v);
      for (int64_t u = 1; u < q; ++u)
#pragma omp simd
        for (int64_t j = 0; j < kCols; ++j)
          v[j] = max_pool ? larger(rows[u * as + j], v[j]) : v[j] + rows[u * as + j];
      const int64_t per_tile = kCols / q;  // windows whose columns lie in this tile
      for (int64_t j = 0; j < per_tile; ++j) {
        float m = v[j * q];
        for (int64_t t = 1; t < q; ++t) m = max_pool ? larger(v[j * q + t], m) : m + v[j * q + t];
        h[j] = max_pool ? m : m * scale;
      }
      const int64_t first = c0 / q, count = std::min(per_tile, s.px - first);
      if (count > 0) std::copy(h, h + count, out + r * s.px + first);
    }
}

// dz (ho, tiled(wo)): the gradient at the conv's output, from the pooled
// output's gradient g (py, px) and the activations a; zero outside the windows.
template <int Q>
void pool_act_grad(const float* g, const float* a, const Shapes& s, int64_t q_runtime,
                   bool max_pool, int act, float* dz) {
  const int64_t q = Q ? Q : q_runtime, as = tiled(s.wo);
  const float scale = 1.0f / static_cast<float>(q * q);
  std::fill(dz, dz + s.ho * as, 0.0f);
  for (int64_t r = 0; r < s.py; ++r) {
    if (max_pool) {  // the window's first maximum takes the gradient
      for (int64_t j = 0; j < s.px; ++j) {
        const float* win = a + r * q * as + j * q;
        int64_t bu = 0, bt = 0;
        for (int64_t u = 0; u < q; ++u)
          for (int64_t t = 0; t < q; ++t)
            if (win[u * as + t] > win[bu * as + bt]) bu = u, bt = t;
        dz[(r * q + bu) * as + j * q + bt] = g[r * s.px + j];
      }
    } else {
      for (int64_t c0 = 0; c0 < as; c0 += kCols) {
        float window[kCols], spread[kCols];  // each window's gradient, then per column
        for (int64_t j = 0; j < kCols / q; ++j)
          window[j] = c0 / q + j < s.px ? g[r * s.px + c0 / q + j] * scale : 0.0f;
        for (int64_t j = 0; j < kCols; ++j) spread[j] = j < kCols / q * q ? window[j / q] : 0.0f;
        for (int64_t u = 0; u < q; ++u)
          std::copy(spread, spread + kCols, dz + (r * q + u) * as + c0);
      }
    }
  }
  for (int64_t r = 0; r < s.py * q; ++r)
#pragma omp simd
    for (int64_t j = 0; j < as; ++j) dz[r * as + j] *= slope(a[r * as + j], act);
}

// For P maps at once (sharing the image's loads):
// wf[p][(di * k + dj) * kCols + j] += sum over rows r of dz[p][r, c0 + j] * x[r + di, c0 + j + dj]
template <int K, int P>
void weight_grad(const float* dz, int64_t map, const Padded& xp, const Shapes& s, float* wf) {
  const int64_t k = K ? K : s.k, as = tiled(s.wo), kk = k * k;
  for (int64_t di = 0; di < k; ++di)
    for (int64_t c0 = 0; c0 < as; c0 += kCols) {
      float acc[P][K ? K : kMaxK][kCols] = {};
      for (int64_t r = 0; r < s.ho; ++r) {
        const float* src = xp.row(r + di) + c0;
        for (int64_t dj = 0; dj < k; ++dj)
          for (int64_t p = 0; p < P; ++p) {
            const float* d = dz + p * map + r * as + c0;
#pragma omp simd
            for (int64_t j = 0; j < kCols; ++j) acc[p][dj][j] += d[j] * src[j + dj];
          }
      }
      for (int64_t p = 0; p < P; ++p) {
        float* w = wf + p * kk * kCols + di * k * kCols;
        for (int64_t dj = 0; dj < k; ++dj)
#pragma omp simd
          for (int64_t j = 0; j < kCols; ++j) w[dj * kCols + j] += acc[p][dj][j];
      }
    }
}

// The per-image work, for LeNet's k = 5, q = 2 at compile time, or any.
struct Image {
  void (*conv_act)(const Padded&, const Filters&, const Shapes&, int, float*);
  void (*pool)(const float*, const Shapes&, int64_t, bool, float*);
  void (*pool_act_grad)(const float*, const float*, const Shapes&, int64_t, bool, int, float*);
  void (*weight_grad2)(const float*, int64_t, const Padded&, const Shapes&, float*);
  void (*weight_grad1)(const float*, int64_t, const Padded&, const Shapes&, float*);
  Image(const Shapes& s, const Params& p) {
    const bool k5 = s.k == 5, q2 = p.pool_size == 2;
    conv_act = k5 ? ::conv_act<5> : ::conv_act<0>;
    weight_grad2 = k5 ? ::weight_grad<5, 2> : ::weight_grad<0, 2>;
    weight_grad1 = k5 ? ::weight_grad<5, 1> : ::weight_grad<0, 1>;
    pool = q2 ? ::pool<2> : ::pool<0>;
    pool_act_grad = q2 ? ::pool_act_grad<2> : ::pool_act_grad<0>;
  }
};

MXReturnValue forward(const std::unordered_map<std::string, std::string>& attrs,
                      std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                      const OpResource& res) {
  Params p;
  if (!parse(attrs, &p)) return MX_FAIL;
  const Shapes s((*inputs)[0], (*inputs)[1], p);
  const Filters w((*inputs)[1], (*inputs)[2], s);
  const Image image(s, p);
  const float* x = (*inputs)[0].data<float>();
  float* y = (*outputs)[0].data<float>();
  const int64_t plane = s.py * s.px, map = s.ho * tiled(s.wo);
#pragma omp parallel  // as many threads as MXNet gives its own operators
  {
    Padded xp(s);
    std::vector<float> a(s.c * map);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.n; ++b) {
      xp.load(x + b * s.h * s.w, s, p.pad);
      image.conv_act(xp, w, s, p.act, a.data());
      float* yb = y + b * p.out_channels * plane;
      for (int64_t f = 0; f < s.c; ++f)
        image.pool(a.data() + f * map, s, p.pool_size, p.max_pool, yb + f * plane);
      std::fill(yb + s.c * plane, yb + p.out_channels * plane, 0.0f);
    }
  }
  return MX_SUCCESS;
}

// inputs: dy, x, weight, bias, y; outputs: dx (zeros), dweight, dbias.
// The activations are recomputed image by image (in cache) rather than kept.
MXReturnValue backward(const std::unordered_map<std::string, std::string>& attrs,
                       std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                       const OpResource& res) {
  Params p;
  if (!parse(attrs, &p)) return MX_FAIL;
  const Shapes s((*inputs)[1], (*inputs)[2], p);
  const Filters w((*inputs)[2], (*inputs)[3], s);
  const Image image(s, p);
  const float* dy = (*inputs)[0].data<float>();
  const float* x = (*inputs)[1].data<float>();
  float* dx = (*outputs)[0].data<float>();
  float* dweight = (*outputs)[1].data<float>();
  float* dbias = (*outputs)[2].data<float>();
  const int64_t plane = s.py * s.px, kk = s.k * s.k, map = s.ho * tiled(s.wo);
  std::fill(dx, dx + s.n * s.h * s.w, 0.0f);
  const int threads = omp_get_max_threads();
  // per thread: the weight gradient as per-lane partial sums (c, k, k, kCols), and the bias'
  const int64_t slot = s.c * kk * kCols + s.c * kCols;
  std::vector<float> part(threads * slot, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float* wsum = part.data() + omp_get_thread_num() * slot;
    float* bsum = wsum + s.c * kk * kCols;
    Padded xp(s);
    std::vector<float> a(s.c * map), dz(s.c * map);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.n; ++b) {
      xp.load(x + b * s.h * s.w, s, p.pad);
      image.conv_act(xp, w, s, p.act, a.data());
      for (int64_t f = 0; f < s.c; ++f) {
        float* dzf = dz.data() + f * map;
        image.pool_act_grad(dy + (b * p.out_channels + f) * plane, a.data() + f * map, s,
                            p.pool_size, p.max_pool, p.act, dzf);
        for (int64_t r = 0; r < map; r += kCols)
#pragma omp simd
          for (int64_t j = 0; j < kCols; ++j) bsum[f * kCols + j] += dzf[r + j];
      }
      int64_t f = 0;
      for (; f + 2 <= s.c; f += 2)  // two maps share each load of the image
        image.weight_grad2(dz.data() + f * map, map, xp, s, wsum + f * kk * kCols);
      if (f < s.c) image.weight_grad1(dz.data() + f * map, map, xp, s, wsum + f * kk * kCols);
    }
  }
  // threads' partial sums in a fixed order: the same result for the same thread count
  for (int64_t f = 0; f < s.c; ++f) {
    for (int64_t i = 0; i <= kk; ++i) {  // i == kk: the bias
      float sum = 0.0f;
      for (int t = 0; t < threads; ++t) {
        const float* acc = part.data() + t * slot + (i < kk ? (f * kk + i) * kCols
                                                            : s.c * kk * kCols + f * kCols);
        for (int64_t j = 0; j < kCols; ++j) sum += acc[j];
      }
      (i < kk ? dweight[f * kk + i] : dbias[f]) = sum;
    }
  }
  return MX_SUCCESS;
}

MXReturnValue parse_attrs(const std::unordered_map<std::string, std::string>& attrs,
                          int* num_in, int* num_out) {
  Params p;
  if (!parse(attrs, &p)) {
    MX_ERROR_MSG << "gluon_classics_conv_pool: bad attributes (pad, act, pool, pool_size, "
                    "out_channels)";
    return MX_FAIL;
  }
  *num_in = 3;
  *num_out = 1;
  return MX_SUCCESS;
}

MXReturnValue infer_type(const std::unordered_map<std::string, std::string>& attrs,
                         std::vector<int>* in_types, std::vector<int>* out_types) {
  for (int t : *in_types)
    if (t != kFloat32) {
      MX_ERROR_MSG << "gluon_classics_conv_pool: float32 only";
      return MX_FAIL;
    }
  (*out_types)[0] = kFloat32;
  return MX_SUCCESS;
}

MXReturnValue infer_shape(const std::unordered_map<std::string, std::string>& attrs,
                          std::vector<std::vector<unsigned int>>* in,
                          std::vector<std::vector<unsigned int>>* out) {
  Params p;
  parse(attrs, &p);
  const auto& x = (*in)[0];
  const auto& w = (*in)[1];
  if (x.size() != 4 || x[1] != 1 || w.size() != 4 || w[1] != 1 || w[2] != w[3] || w[2] > kMaxK ||
      (*in)[2].size() != 1 || (*in)[2][0] != w[0] || p.out_channels < static_cast<int>(w[0]) ||
      kCols % p.pool_size) {
    MX_ERROR_MSG << "gluon_classics_conv_pool: wants x (N, 1, H, W), weight (C, 1, k, k) with "
                    "k <= 11, bias (C,), out_channels >= C, a pool_size dividing 32";
    return MX_FAIL;
  }
  const unsigned ho = x[2] + 2 * p.pad - w[2] + 1, wo = x[3] + 2 * p.pad - w[3] + 1;
  (*out)[0] = {x[0], static_cast<unsigned>(p.out_channels), ho / p.pool_size, wo / p.pool_size};
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gluon_classics_conv_pool)
    .setForward(forward, "cpu")
    .setBackward(backward, "cpu")
    .setParseAttrs(parse_attrs)
    .setInferType(infer_type)
    .setInferShape(infer_shape);

MXReturnValue initialize(int version) {
  return version >= 10900 ? MX_SUCCESS : MX_FAIL;
}

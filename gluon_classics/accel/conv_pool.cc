// LeNet's conv blocks (a conv layer, its activation and its pooling), each as
// one MXNet operator (MXNet's extension API, lib_api.h):
//
//   gluon_classics_conv_pool       the first block, on 1-channel images
//     inputs   x (N, 1, H, W), weight (C, 1, k, k), bias (C,)
//     output   y (N, C_out, H'/s, W'/s): the pooled maps, C_out >= C (the maps
//              past C are zeros: the next conv's input channels padded to
//              oneDNN's block, where MXNet's conv follows)
//     attrs    pad, act, pool, pool_size (dividing 32), out_channels (C_out)
//   gluon_classics_conv_pool_maps  later blocks, on C maps
//     inputs   x (N, C, H, W), weight (F, C, k, k), bias (F,)
//     output   y (N, F, H'/s, W'/s)
//     attrs    pad, act, pool, pool_size
//
//   act (sigmoid | relu | identity), pool (max | avg), pool_size (= stride,
//   no padding); square kernels up to 11, stride 1.
//
// Checked before any work, each with one message naming what is wrong and what
// it may be: pad 0..1024, pool_size 1..32, out_channels C..4096, integers
// written as integers ("3abc" is no 3); H and W 1..16384; C and F 1..4096; an
// output of at least 1x1 and at most 2^31 - 1 floats (MXNet 1.9's int32
// indexing), and at most 2^34 floats of activations kept per call.
//
// oneDNN 2.4 has no fast kernels for LeNet's shapes (1 input channel and 6
// filters; 6 maps and 16 filters on 10x10 outputs) and runs the activations
// and poolings as separate passes over the batch's maps. Here an image's
// block stays in L1: conv, activation and pooling in one pass forward; the
// pooling's and activation's gradients, the weight and bias gradients (and
// for later blocks the input's) in one pass backward. The forward keeps its
// activations for the backward (Kept).
//
// Work is split over images (OpenMP, as many threads as MXNet gives its
// operators); the weight gradient's per-thread sums are added in a fixed order.
//
// Same function as Convolution + Activation + Pooling up to float rounding
// (summation order; exp is a polynomial within 2 ulp). NaN as in MXNet: relu
// makes it 0, max pooling skips it (a window of NaNs gives float's lowest),
// sigmoid, identity and average pooling keep it. The
// first block does not compute the gradient of x (zeros): the graph feeds x
// through BlockGrad.
#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lib_api.h"

using namespace mxnet::ext;

namespace {

struct Params {
  int pad, pool_size, out_channels;
  enum { kSigmoid, kRelu, kIdentity } act;
  bool max_pool;
};

// exp(t) for t <= 0 (t = -|z|): Cody-Waite reduction and a degree-6
// polynomial, written so that the compiler vectorizes the loops calling it.
// 0 below -87, as MXNet's sigmoid saturates to exactly 0 and 1 there (its
// gradient then is 0, also where a huge input meets it).
inline float exp_nonpositive(float t) {
  const bool under = t < -87.0f;
  t = under ? -87.0f : t;  // exp(-87) is still a normal float
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
  return under ? 0.0f : p * scale;
}

inline float sigmoid(float z) {
  const float e = exp_nonpositive(-std::fabs(z));
  const float s = (z >= 0.0f ? 1.0f : e) / (1.0f + e);
  return z != z ? z : s;
}

inline float relu(float z) { return z > 0.0f ? z : 0.0f; }  // NaN -> 0, as MXNet's relu

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

// MXNet's max pooling starts from float's lowest and takes an entry only where it
// is larger: NaN (and -inf) count as the lowest float.
constexpr float kLowest = -3.40282347e+38f;
inline float floored(float u) { return u >= kLowest ? u : kLowest; }
inline float larger(float u, float v) {
  u = floored(u), v = floored(v);
  return u > v ? u : v;
}

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
constexpr int64_t kGradMaps = 3;  // 15 zmm of sums, 3 of the maps' gradient, 1 of the image
#else
constexpr int64_t kGroup = 3;  // 12 of 16 ymm registers
constexpr int64_t kGradMaps = 2;  // 10 ymm of sums, 2 of the maps' gradient, 1 of the image
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

// One register of floats (zmm, or ymm on AVX2), and the shuffles of 2x2 pooling
#ifdef __AVX512F__
constexpr int kVec = 16;
#else
constexpr int kVec = 8;
#endif
typedef float Vec __attribute__((vector_size(kVec * sizeof(float)), aligned(4)));
inline Vec load(const float* p) { return *reinterpret_cast<const Vec*>(p); }
inline void store(float* p, Vec v) { *reinterpret_cast<Vec*>(p) = v; }
inline Vec larger(Vec u, Vec v) {
  const Vec low = Vec{} + kLowest;
  u = u >= low ? u : low, v = v >= low ? v : low;
  return u > v ? u : v;
}
template <size_t... I>
Vec evens(Vec u, Vec v, std::index_sequence<I...>) { return __builtin_shufflevector(u, v, 2 * I...); }
template <size_t... I>
Vec odds(Vec u, Vec v, std::index_sequence<I...>) { return __builtin_shufflevector(u, v, 2 * I + 1 ...); }
// lanes (half * kVec + i) / 2 of w: each of w's lanes twice
template <int Half, size_t... I>
Vec doubled(Vec w, std::index_sequence<I...>) {
  return __builtin_shufflevector(w, w, (Half * kVec + I) / 2 ...);
}
constexpr auto kLanesOf = std::make_index_sequence<kVec>{};
static_assert(kCols % (2 * kVec) == 0, "tiles of whole pairs of registers");
// Keeps v in a register: GCC otherwise folds a load used by several FMAs
// into each of them, and loads (not FMAs) then bound the loop.
inline void in_register(Vec& v) { asm("" : "+v"(v)); }

// One map's pooled rows (py, px) from its activations (ho, tiled(wo)), a tile
// of kCols columns at a time: down the window's rows, then across its columns
// (for q = 2 in whole registers: LeNet's rows of 14 windows are too short
// for vector loops over a row).
template <int Q>
void pool(const float* a, const Shapes& s, int64_t q_runtime, bool max_pool, float* out) {
  const int64_t q = Q ? Q : q_runtime, as = tiled(s.wo), per_tile = kCols / q;
  const float scale = 1.0f / static_cast<float>(q * q);
  for (int64_t r = 0; r < s.py; ++r)
    for (int64_t c0 = 0; c0 < as; c0 += kCols) {
      float h[kCols];
      const float* rows = a + r * q * as + c0;
      if constexpr (Q == 2) {
        for (int64_t t = 0; t < kCols; t += 2 * kVec) {
          Vec u = load(rows + t), v = load(rows + t + kVec);
          const Vec u1 = load(rows + as + t), v1 = load(rows + as + t + kVec);
          u = max_pool ? larger(u1, u) : u + u1;
          v = max_pool ? larger(v1, v) : v + v1;
          const Vec even = evens(u, v, kLanesOf), odd = odds(u, v, kLanesOf);
          store(h + t / 2, max_pool ? larger(odd, even) : (even + odd) * scale);
        }
      } else {
        float v[kCols];
        std::copy(rows, rows + kCols, v);
        for (int64_t u = 1; u < q; ++u)
#pragma omp simd
          for (int64_t j = 0; j < kCols; ++j)
            v[j] = max_pool ? larger(rows[u * as + j], v[j]) : v[j] + rows[u * as + j];
        for (int64_t j = 0; j < per_tile; ++j) {
          float m = v[j * q];
          for (int64_t t = 1; t < q; ++t) m = max_pool ? larger(v[j * q + t], m) : m + v[j * q + t];
          h[j] = max_pool ? floored(m) : m * scale;  // floored: a 1x1 window
        }
      }
      const int64_t first = c0 / q, count = std::min(per_tile, s.px - first);
      float* o = out + r * s.px + first;
#pragma omp simd
      for (int64_t j = 0; j < count; ++j) o[j] = h[j];
    }
}

// dz (ho, tiled(wo)): the gradient at the conv's output, from the pooled
// output's gradient g (py, px) and the activations a; zero outside the windows.
template <int Q>
void pool_act_grad(const float* g, const float* a, const Shapes& s, int64_t q_runtime,
                   bool max_pool, int act, float* dz) {
  const int64_t q = Q ? Q : q_runtime, as = tiled(s.wo), per_tile = kCols / q;
  const float scale = 1.0f / static_cast<float>(q * q);
  std::fill(dz + s.py * q * as, dz + s.ho * as, 0.0f);  // rows under no window
  if (max_pool) {  // the window's first maximum (NaN as the lowest float) takes the gradient
    std::fill(dz, dz + s.py * q * as, 0.0f);
    for (int64_t r = 0; r < s.py; ++r)
      for (int64_t j = 0; j < s.px; ++j) {
        const float* win = a + r * q * as + j * q;
        int64_t bu = 0, bt = 0;
        for (int64_t u = 0; u < q; ++u)
          for (int64_t t = 0; t < q; ++t)
            if (floored(win[u * as + t]) > floored(win[bu * as + bt])) bu = u, bt = t;
        dz[(r * q + bu) * as + j * q + bt] = g[r * s.px + j];
      }
#pragma omp simd
    for (int64_t i = 0; i < s.py * q * as; ++i) dz[i] *= slope(a[i], act);
    return;
  }
  for (int64_t r = 0; r < s.py; ++r)
    for (int64_t c0 = 0; c0 < as; c0 += kCols) {
      float window[kCols], spread[kCols];  // each window's gradient, then per column
      const int64_t first = c0 / q, count = std::max<int64_t>(0, std::min(per_tile, s.px - first));
      std::fill(window, window + kCols, 0.0f);
      for (int64_t j = 0; j < count; ++j) window[j] = g[r * s.px + first + j] * scale;
      if constexpr (Q == 2) {
        for (int64_t t = 0; t < kCols / 2; t += kVec) {
          const Vec w = load(window + t);
          store(spread + 2 * t, doubled<0>(w, kLanesOf));
          store(spread + 2 * t + kVec, doubled<1>(w, kLanesOf));
        }
      } else {
        for (int64_t j = 0; j < kCols; ++j) spread[j] = window[j / q];
      }
      for (int64_t u = 0; u < q; ++u) {
        const float* ar = a + (r * q + u) * as + c0;
        float* out = dz + (r * q + u) * as + c0;
#pragma omp simd
        for (int64_t j = 0; j < kCols; ++j) out[j] = spread[j] * slope(ar[j], act);
      }
    }
}

// For P maps at once (sharing the image's loads), a register of columns at a time:
// wf[p][(di * k + dj) * kCols + j] += sum over rows r of dz[p][r, c0 + j] * x[r + di, c0 + j + dj]
template <int K, int P>
void weight_grad(const float* dz, int64_t map, const Padded& xp, const Shapes& s, float* wf) {
  const int64_t k = K ? K : s.k, as = tiled(s.wo), kk = k * k;
  for (int64_t di = 0; di < k; ++di)
    for (int64_t c0 = 0; c0 < as; c0 += kVec) {
      Vec acc[P][K ? K : kMaxK] = {};
      for (int64_t r = 0; r < s.ho; ++r) {
        const float* src = xp.row(r + di) + c0;
        Vec d[P];
        for (int64_t p = 0; p < P; ++p) d[p] = load(dz + p * map + r * as + c0);
        for (int64_t dj = 0; dj < k; ++dj) {
          Vec x = load(src + dj);
          in_register(x);  // one load of each shifted row for the P maps
          for (int64_t p = 0; p < P; ++p) acc[p][dj] += d[p] * x;
        }
      }
      for (int64_t p = 0; p < P; ++p)
        for (int64_t dj = 0; dj < k; ++dj) {
          float* w = wf + p * kk * kCols + (di * k + dj) * kCols + c0 % kCols;
          store(w, load(w) + acc[p][dj]);
        }
    }
}

// The per-image work, for LeNet's k = 5, q = 2 at compile time, or any.
struct Image {
  void (*conv_act)(const Padded&, const Filters&, const Shapes&, int, float*);
  void (*pool)(const float*, const Shapes&, int64_t, bool, float*);
  void (*pool_act_grad)(const float*, const float*, const Shapes&, int64_t, bool, int, float*);
  void (*weight_grads)(const float*, int64_t, const Padded&, const Shapes&, float*);
  void (*weight_grad1)(const float*, int64_t, const Padded&, const Shapes&, float*);
  Image(const Shapes& s, const Params& p) {
    const bool k5 = s.k == 5, q2 = p.pool_size == 2;
    conv_act = k5 ? ::conv_act<5> : ::conv_act<0>;
    weight_grads = k5 ? ::weight_grad<5, kGradMaps> : ::weight_grad<0, kGradMaps>;
    weight_grad1 = k5 ? ::weight_grad<5, 1> : ::weight_grad<0, 1>;
    pool = q2 ? ::pool<2> : ::pool<0>;
    pool_act_grad = q2 ? ::pool_act_grad<2> : ::pool_act_grad<0>;
  }
};

// What a forward leaves for its backward: the activations, and the inputs
// they came from. The backward uses an image's activations only where its
// x, the weight and the bias are byte for byte the forward's (a retained
// graph, inputs changed in place), and recomputes them elsewhere.
struct Kept {
  std::vector<float> act, x, weight, bias;
  // at a forward: room for n images' activations and inputs, and the parameters
  void start(int64_t n, int64_t act_size, int64_t x_size, MXTensor& w, MXTensor& b) {
    act.resize(n * act_size);
    x.resize(n * x_size);
    weight.assign(w.data<float>(), w.data<float>() + w.size());
    bias.assign(b.data<float>(), b.data<float>() + b.size());
  }
  // at a backward: whether the parameters are the forward's (then ask image())
  bool fresh(int64_t n, int64_t x_size, MXTensor& w, MXTensor& b) const {
    return static_cast<int64_t>(x.size()) == n * x_size && same(weight, w) && same(bias, b);
  }
  bool image(int64_t i, const float* xi, int64_t x_size) const {
    return !std::memcmp(x.data() + i * x_size, xi, x_size * sizeof *xi);
  }

 private:
  static bool same(const std::vector<float>& kept, MXTensor& t) {
    return static_cast<int64_t>(kept.size()) == t.size() &&
           !std::memcmp(kept.data(), t.data<float>(), kept.size() * sizeof(float));
  }
};

// What the threads' partial sums hold at ``at`` (``lanes`` floats in each
// thread's slot), added in a fixed order: the same result for the same thread count.
float sum_parts(const std::vector<float>& part, int threads, int64_t slot, int64_t at,
                int64_t lanes) {
  float sum = 0.0f;
  for (int t = 0; t < threads; ++t)
    for (int64_t j = 0; j < lanes; ++j) sum += part[t * slot + at + j];
  return sum;
}

void forward_pass(const Params& p, std::vector<MXTensor>& inputs, MXTensor& output, Kept* kept) {
  const Shapes s(inputs[0], inputs[1], p);
  const Filters w(inputs[1], inputs[2], s);
  const Image image(s, p);
  const float* x = inputs[0].data<float>();
  float* y = output.data<float>();
  const int64_t plane = s.py * s.px, map = s.ho * tiled(s.wo), pixels = s.h * s.w;
  kept->start(s.n, s.c * map, pixels, inputs[1], inputs[2]);
#pragma omp parallel  // as many threads as MXNet gives its own operators
  {
    Padded xp(s);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.n; ++b) {
      std::copy(x + b * pixels, x + (b + 1) * pixels, kept->x.data() + b * pixels);
      xp.load(x + b * pixels, s, p.pad);
      float* a = kept->act.data() + b * s.c * map;
      image.conv_act(xp, w, s, p.act, a);
      float* yb = y + b * p.out_channels * plane;
      for (int64_t f = 0; f < s.c; ++f)
        image.pool(a + f * map, s, p.pool_size, p.max_pool, yb + f * plane);
      std::fill(yb + s.c * plane, yb + p.out_channels * plane, 0.0f);
    }
  }
}

// inputs: dy, x, weight, bias, y; outputs: dx (zeros), dweight, dbias.
void backward_pass(const Params& p, std::vector<MXTensor>& inputs, std::vector<MXTensor>& outputs,
                   const Kept& kept) {
  const Shapes s(inputs[1], inputs[2], p);
  const Filters w(inputs[2], inputs[3], s);
  const Image image(s, p);
  const float* dy = inputs[0].data<float>();
  const float* x = inputs[1].data<float>();
  float* dx = outputs[0].data<float>();
  float* dweight = outputs[1].data<float>();
  float* dbias = outputs[2].data<float>();
  const int64_t plane = s.py * s.px, kk = s.k * s.k, map = s.ho * tiled(s.wo), pixels = s.h * s.w;
  const bool fresh = kept.fresh(s.n, pixels, inputs[2], inputs[3]);
  const int threads = omp_get_max_threads();
  // per thread: the weight gradient as per-lane partial sums (c, k, k, kCols), and the bias'
  const int64_t slot = s.c * kk * kCols + s.c * kCols;
  std::vector<float> part(threads * slot, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float* wsum = part.data() + omp_get_thread_num() * slot;
    float* bsum = wsum + s.c * kk * kCols;
    Padded xp(s);
    std::vector<float> again(s.c * map), dz(s.c * map);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.n; ++b) {
      std::fill(dx + b * pixels, dx + (b + 1) * pixels, 0.0f);
      xp.load(x + b * pixels, s, p.pad);
      const float* a = kept.act.data() + b * s.c * map;
      if (!fresh || !kept.image(b, x + b * pixels, pixels)) {
        image.conv_act(xp, w, s, p.act, again.data());
        a = again.data();
      }
      for (int64_t f = 0; f < s.c; ++f) {
        float* dzf = dz.data() + f * map;
        image.pool_act_grad(dy + (b * p.out_channels + f) * plane, a + f * map, s,
                            p.pool_size, p.max_pool, p.act, dzf);
        for (int64_t r = 0; r < map; r += kCols)
#pragma omp simd
          for (int64_t j = 0; j < kCols; ++j) bsum[f * kCols + j] += dzf[r + j];
      }
      int64_t f = 0;
      for (; f + kGradMaps <= s.c; f += kGradMaps)  // maps sharing each load of the image
        image.weight_grads(dz.data() + f * map, map, xp, s, wsum + f * kk * kCols);
      for (; f < s.c; ++f) image.weight_grad1(dz.data() + f * map, map, xp, s, wsum + f * kk * kCols);
    }
  }
  for (int64_t f = 0; f < s.c; ++f) {
    for (int64_t i = 0; i < kk; ++i)
      dweight[f * kk + i] = sum_parts(part, threads, slot, (f * kk + i) * kCols, kCols);
    dbias[f] = sum_parts(part, threads, slot, s.c * kk * kCols + f * kCols, kCols);
  }
}

// ---- LeNet's later blocks: a conv on C maps, its activation and pooling ----
// Vectorized over filters: kLanes filters per register, so maps are kept
// channels-last inside (one image's input maps in planar copies with zero
// borders). The forward keeps its activations for the backward (Kept), which
// computes the input's gradient too.
// kLanes filters: one zmm, or two ymm on AVX2 (whose 16 registers then hold
// tiles half as wide): each broadcast input value serves 16 filters.
constexpr int64_t kLanes = 16;
#ifdef __AVX512F__
constexpr int64_t kRun = 10;    // output columns per register tile (10 zmm)
constexpr int64_t kInTile = 8;  // input maps per register tile of the input's gradient (8 zmm)
#else
constexpr int64_t kRun = 5;     // 10 ymm
constexpr int64_t kInTile = 4;  // 8 ymm
#endif

struct MapShapes {
  // hp, wp: the padded input, wide enough for a tile of kRun columns past wo;
  // wt: wo rounded up to tiles; groups: filter registers; wx: w rounded up to lanes
  int64_t n, ci, h, w, co, k, pad, q, hp, ho, wo, wt, wp, py, px, groups, wx;
  MapShapes(const MXTensor& x, const MXTensor& weight, const Params& p)
      : n(x.shape[0]), ci(x.shape[1]), h(x.shape[2]), w(x.shape[3]), co(weight.shape[0]),
        k(weight.shape[2]), pad(p.pad), q(p.pool_size), hp(h + 2 * pad), ho(hp - k + 1),
        wo(w + 2 * pad - k + 1), wt((wo + kRun - 1) / kRun * kRun), wp(wt + k - 1),
        py(ho / q), px(wo / q), groups((co + kLanes - 1) / kLanes),
        wx((w + kLanes - 1) / kLanes * kLanes) {}
  int64_t kept() const { return groups * ho * wt * kLanes; }  // activations per image
  int64_t cols() const { return wx + 2 * pad + k - 1; }  // the output gradient's padded rows
};

// The weights as [group][map][tap][lane] (zero lanes past co), and as
// [filter][tap][map] for the input's gradient; the biases per lane.
struct MapFilters {
  std::vector<float> taps, back, bias;
  MapFilters(MXTensor& weight, MXTensor& bias_in, const MapShapes& s)
      : taps(s.groups * s.ci * s.k * s.k * kLanes, 0.0f), back(s.co * s.k * s.k * s.ci),
        bias(s.groups * kLanes, 0.0f) {
    const int64_t kk = s.k * s.k;
    const float* wd = weight.data<float>();
    for (int64_t f = 0; f < s.co; ++f) {
      for (int64_t c = 0; c < s.ci; ++c)
        for (int64_t t = 0; t < kk; ++t) {
          const float v = wd[(f * s.ci + c) * kk + t];
          taps[((f / kLanes * s.ci + c) * kk + t) * kLanes + f % kLanes] = v;
          back[(f * kk + t) * s.ci + c] = v;
        }
      bias[f] = bias_in.data<float>()[f];
    }
  }
};

// One image's maps (ci, h, w) into planar copies (ci, hp, wp) with zero borders.
void load_maps(const float* x, const MapShapes& s, float* xp) {
  std::fill(xp, xp + s.ci * s.hp * s.wp, 0.0f);
  for (int64_t c = 0; c < s.ci; ++c)
    for (int64_t i = 0; i < s.h; ++i)
      std::copy(x + (c * s.h + i) * s.w, x + (c * s.h + i + 1) * s.w,
                xp + (c * s.hp + i + s.pad) * s.wp + s.pad);
}

// a (groups, ho, wt, kLanes): the activations, from the padded maps.
template <int K>
void maps_conv_act(const float* xp, const MapFilters& w, const MapShapes& s, int act, float* a) {
  const int64_t k = K ? K : s.k, kk = k * k, plane = s.hp * s.wp;
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t r = 0; r < s.ho; ++r)
      for (int64_t x0 = 0; x0 < s.wt; x0 += kRun) {
        float acc[kRun][kLanes];
        for (int64_t u = 0; u < kRun; ++u)
#pragma omp simd
          for (int64_t j = 0; j < kLanes; ++j) acc[u][j] = w.bias[g * kLanes + j];
        for (int64_t c = 0; c < s.ci; ++c)
          for (int64_t di = 0; di < k; ++di) {
            const float* src = xp + c * plane + (r + di) * s.wp + x0;
            const float* wv = w.taps.data() + ((g * s.ci + c) * kk + di * k) * kLanes;
            for (int64_t dj = 0; dj < k; ++dj)
              for (int64_t u = 0; u < kRun; ++u)
#pragma omp simd
                for (int64_t j = 0; j < kLanes; ++j)
                  acc[u][j] += src[u + dj] * wv[dj * kLanes + j];
          }
        float* out = a + ((g * s.ho + r) * s.wt + x0) * kLanes;
        for (int64_t u = 0; u < kRun; ++u) {
          activate(acc[u], kLanes, act);
          std::copy(acc[u], acc[u] + kLanes, out + u * kLanes);
        }
      }
}

// One image's pooled maps y (co, py, px) from its activations.
void maps_pool(const float* a, const MapShapes& s, bool max_pool, float* y) {
  const float scale = 1.0f / static_cast<float>(s.q * s.q);
  for (int64_t g = 0; g < s.groups; ++g)
    for (int64_t r = 0; r < s.py; ++r)
      for (int64_t c = 0; c < s.px; ++c) {
        const float* win = a + ((g * s.ho + r * s.q) * s.wt + c * s.q) * kLanes;
        float v[kLanes];
        std::copy(win, win + kLanes, v);
        for (int64_t u = 0; u < s.q; ++u)
          for (int64_t t = u ? 0 : 1; t < s.q; ++t) {
            const float* e = win + (u * s.wt + t) * kLanes;
#pragma omp simd
            for (int64_t j = 0; j < kLanes; ++j) v[j] = max_pool ? larger(e[j], v[j]) : v[j] + e[j];
          }
        for (int64_t j = 0; j < kLanes && g * kLanes + j < s.co; ++j)
          y[((g * kLanes + j) * s.py + r) * s.px + c] = max_pool ? floored(v[j]) : v[j] * scale;
      }
}

// dz (groups, ho, wt, kLanes): the gradient at the conv's output, from the
// pooled output's gradient g (co, py, px) and the activations a.
void maps_pool_act_grad(const float* g, const float* a, const MapShapes& s, bool max_pool,
                        int act, float* dz) {
  const float scale = 1.0f / static_cast<float>(s.q * s.q);
  std::fill(dz, dz + s.kept(), 0.0f);
  for (int64_t gr = 0; gr < s.groups; ++gr)
    for (int64_t r = 0; r < s.py; ++r)
      for (int64_t c = 0; c < s.px; ++c) {
        const int64_t at = ((gr * s.ho + r * s.q) * s.wt + c * s.q) * kLanes;
        float gv[kLanes];
        for (int64_t j = 0; j < kLanes; ++j) {
          const int64_t f = gr * kLanes + j;
          gv[j] = f < s.co ? g[(f * s.py + r) * s.px + c] : 0.0f;
        }
        if (max_pool) {  // the window's first maximum (NaN as the lowest float) takes the gradient
          for (int64_t j = 0; j < kLanes; ++j) {
            int64_t best = 0;
            for (int64_t u = 0; u < s.q; ++u)
              for (int64_t t = 0; t < s.q; ++t) {
                const int64_t o = (u * s.wt + t) * kLanes;
                if (floored(a[at + o + j]) > floored(a[at + best + j])) best = o;
              }
            dz[at + best + j] = gv[j];
          }
        } else {
          for (int64_t u = 0; u < s.q; ++u)
            for (int64_t t = 0; t < s.q; ++t)
#pragma omp simd
              for (int64_t j = 0; j < kLanes; ++j)
                dz[at + (u * s.wt + t) * kLanes + j] = gv[j] * scale;
        }
      }
  for (int64_t gr = 0; gr < s.groups; ++gr)
    for (int64_t r = 0; r < s.ho; ++r) {
      const int64_t row = (gr * s.ho + r) * s.wt * kLanes;
#pragma omp simd
      for (int64_t j = 0; j < s.wo * kLanes; ++j) dz[row + j] *= slope(a[row + j], act);
    }
}

// wsum (groups, ci, k*k, kLanes) += the weight gradient; bsum (groups, kLanes) the bias'.
template <int K>
void maps_weight_grad(const float* dz, const float* xp, const MapShapes& s, float* wsum,
                      float* bsum) {
  const int64_t k = K ? K : s.k, kk = k * k, plane = s.hp * s.wp;
  for (int64_t g = 0; g < s.groups; ++g) {
    const float* dg = dz + g * s.ho * s.wt * kLanes;
    for (int64_t r = 0; r < s.ho; ++r)
      for (int64_t x = 0; x < s.wo; ++x)
#pragma omp simd
        for (int64_t j = 0; j < kLanes; ++j) bsum[g * kLanes + j] += dg[(r * s.wt + x) * kLanes + j];
    for (int64_t c = 0; c < s.ci; ++c)
      for (int64_t di = 0; di < k; ++di) {
        float acc[K ? K : kMaxK][kLanes] = {};
        for (int64_t r = 0; r < s.ho; ++r) {
          const float* src = xp + c * plane + (r + di) * s.wp;
          const float* d = dg + r * s.wt * kLanes;
          for (int64_t x = 0; x < s.wo; ++x)
            for (int64_t dj = 0; dj < k; ++dj)
#pragma omp simd
              for (int64_t j = 0; j < kLanes; ++j) acc[dj][j] += src[x + dj] * d[x * kLanes + j];
        }
        float* out = wsum + ((g * s.ci + c) * kk + di * k) * kLanes;
        for (int64_t dj = 0; dj < k; ++dj)
#pragma omp simd
          for (int64_t j = 0; j < kLanes; ++j) out[dj * kLanes + j] += acc[dj][j];
      }
  }
}

// dzp (co, ho, cols): dz in planar rows with k - 1 zero columns before them
// and zeros after, so that every input column reads a whole register.
void planar_grad(const float* dz, const MapShapes& s, float* dzp) {
  const int64_t cols = s.cols();
  std::fill(dzp, dzp + s.co * s.ho * cols, 0.0f);
  for (int64_t f = 0; f < s.co; ++f) {
    const float* src = dz + (f / kLanes * s.ho * s.wt) * kLanes + f % kLanes;
    for (int64_t r = 0; r < s.ho; ++r)
      for (int64_t x = 0; x < s.wo; ++x)
        dzp[(f * s.ho + r) * cols + x + s.k - 1] = src[(r * s.wt + x) * kLanes];
  }
}

// dx (ci, h, w) of one image, C input maps from c0 at a time:
// dx[c, i, j] = sum over f, di, dj of w[f, c, di, dj] * dz[f, i + pad - di, j + pad - dj]
template <int K, int C>
void maps_input_grad(const float* dzp, const MapFilters& w, const MapShapes& s, int64_t c0,
                     float* dx) {
  const int64_t k = K ? K : s.k, kk = k * k, cols = s.cols();
  for (int64_t i = 0; i < s.h; ++i)
    for (int64_t j0 = 0; j0 < s.wx; j0 += kLanes) {
      float acc[C][kLanes] = {};
      for (int64_t f = 0; f < s.co; ++f)
        for (int64_t di = 0; di < k; ++di) {
          const int64_t r = i + s.pad - di;
          if (r < 0 || r >= s.ho) continue;
          const float* row = dzp + (f * s.ho + r) * cols + j0 + s.pad + k - 1;
          const float* wv = w.back.data() + (f * kk + di * k) * s.ci + c0;
          for (int64_t dj = 0; dj < k; ++dj)
            for (int64_t u = 0; u < C; ++u)
#pragma omp simd
              for (int64_t j = 0; j < kLanes; ++j)
                acc[u][j] += wv[dj * s.ci + u] * row[j - dj];
        }
      const int64_t n = std::min(kLanes, s.w - j0);
      for (int64_t u = 0; u < C; ++u)
        std::copy(acc[u], acc[u] + n, dx + ((c0 + u) * s.h + i) * s.w + j0);
    }
}

template <int K, int... C>
void maps_input_grad_all(const float* dzp, const MapFilters& w, const MapShapes& s, float* dx,
                         std::integer_sequence<int, C...>) {
  using Tile = void (*)(const float*, const MapFilters&, const MapShapes&, int64_t, float*);
  static constexpr Tile tiles[] = {maps_input_grad<K, C + 1>...};
  for (int64_t c0 = 0; c0 < s.ci; c0 += kInTile)
    tiles[std::min(kInTile, s.ci - c0) - 1](dzp, w, s, c0, dx);
}

template <int K>
void maps_input_grad_any(const float* dzp, const MapFilters& w, const MapShapes& s, float* dx) {
  maps_input_grad_all<K>(dzp, w, s, dx, std::make_integer_sequence<int, kInTile>{});
}

void maps_forward(const Params& p, std::vector<MXTensor>& inputs, MXTensor& output, Kept* kept) {
  const MapShapes s(inputs[0], inputs[1], p);
  const MapFilters w(inputs[1], inputs[2], s);
  const auto conv = s.k == 5 ? maps_conv_act<5> : maps_conv_act<0>;
  const int64_t image = s.ci * s.h * s.w;
  const float* x = inputs[0].data<float>();
  float* y = output.data<float>();
  kept->start(s.n, s.kept(), image, inputs[1], inputs[2]);
#pragma omp parallel
  {
    std::vector<float> xp(s.ci * s.hp * s.wp + kRun);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.n; ++b) {
      std::copy(x + b * image, x + (b + 1) * image, kept->x.data() + b * image);
      load_maps(x + b * image, s, xp.data());
      float* a = kept->act.data() + b * s.kept();
      conv(xp.data(), w, s, p.act, a);
      maps_pool(a, s, p.max_pool, y + b * s.co * s.py * s.px);
    }
  }
}

// inputs: dy, x, weight, bias, y; outputs: dx, dweight, dbias.
void maps_backward(const Params& p, std::vector<MXTensor>& inputs, std::vector<MXTensor>& outputs,
                   const Kept& kept) {
  const MapShapes s(inputs[1], inputs[2], p);
  const MapFilters w(inputs[2], inputs[3], s);
  const auto conv = s.k == 5 ? maps_conv_act<5> : maps_conv_act<0>;
  const auto weight_grad = s.k == 5 ? maps_weight_grad<5> : maps_weight_grad<0>;
  const auto input_grad = s.k == 5 ? maps_input_grad_any<5> : maps_input_grad_any<0>;
  const int64_t image = s.ci * s.h * s.w;
  const float* dy = inputs[0].data<float>();
  const float* x = inputs[1].data<float>();
  const bool fresh = kept.fresh(s.n, image, inputs[2], inputs[3]);
  float* dx = outputs[0].data<float>();
  float* dweight = outputs[1].data<float>();
  float* dbias = outputs[2].data<float>();
  const int64_t kk = s.k * s.k, wsize = s.groups * s.ci * kk * kLanes;
  const int threads = omp_get_max_threads();
  const int64_t slot = wsize + s.groups * kLanes;  // per thread: weight and bias partial sums
  std::vector<float> part(threads * slot, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float* wsum = part.data() + omp_get_thread_num() * slot;
    std::vector<float> xp(s.ci * s.hp * s.wp + kRun), dz(s.kept()), act(s.kept()),
        dzp(s.co * s.ho * s.cols() + kLanes);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.n; ++b) {
      const float* xb = x + b * image;
      load_maps(xb, s, xp.data());
      const float* a = kept.act.data() + b * s.kept();
      if (!fresh || !kept.image(b, xb, image)) {
        conv(xp.data(), w, s, p.act, act.data());
        a = act.data();
      }
      maps_pool_act_grad(dy + b * s.co * s.py * s.px, a, s, p.max_pool, p.act, dz.data());
      weight_grad(dz.data(), xp.data(), s, wsum, wsum + wsize);
      planar_grad(dz.data(), s, dzp.data());
      input_grad(dzp.data(), w, s, dx + b * image);
    }
  }
  for (int64_t f = 0; f < s.co; ++f) {
    for (int64_t i = 0; i < s.ci * kk; ++i)
      dweight[f * s.ci * kk + i] =
          sum_parts(part, threads, slot, ((f / kLanes * s.ci) * kk + i) * kLanes + f % kLanes, 1);
    dbias[f] = sum_parts(part, threads, slot, wsize + f, 1);
  }
}

// One instance per graph node: what its last forward kept.
template <void (*Fwd)(const Params&, std::vector<MXTensor>&, MXTensor&, Kept*),
          void (*Bwd)(const Params&, std::vector<MXTensor>&, std::vector<MXTensor>&, const Kept&)>
class Keeping : public CustomStatefulOp {
 public:
  explicit Keeping(const Params& p) : p_(p) {}
  MXReturnValue Forward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                        const OpResource& res) override {
    Fwd(p_, *inputs, (*outputs)[0], &kept_);
    return MX_SUCCESS;
  }
  MXReturnValue Backward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                         const OpResource& res) override {
    Bwd(p_, *inputs, *outputs, kept_);
    return MX_SUCCESS;
  }

 private:
  Params p_;
  Kept kept_;
};

// ---- Attributes and shapes, checked before any work ----
// Each bad attribute or shape gets one message naming it and what it may be.
// The bounds keep every size computed here and in the kernels far inside
// int64, and the output within MXNet 1.9's int32 indexing (its wheels are built
// without INT64_TENSOR_SIZE).
constexpr int64_t kMaxPad = 1024;       // zeros around each image (past k - 1 they add only zeros)
constexpr int64_t kMaxPool = 32;        // the pooling window (= stride)
constexpr int64_t kMaxChannels = 4096;  // maps in, filters, out_channels
constexpr int64_t kMaxSide = 16384;     // an image's height and width
constexpr int64_t kMaxOutput = (int64_t{1} << 31) - 1;  // MXNet's int32 indexing
constexpr int64_t kMaxKept = int64_t{1} << 34;  // activations a forward keeps (64 GiB)

using Attrs = std::unordered_map<std::string, std::string>;

// MXNet 1.9 shows every message an extension ever added (lib_api.cc keeps them
// in one list that nothing clears), so a second bad call would repeat the
// first's. error() empties the list first: one message per error. The list is
// private; an explicit instantiation may name a private member ([temp.spec]).
using MessageList = std::vector<std::stringstream*> MXerrorMsgs::*;
template <MessageList M>
struct ErrorList {
  friend std::vector<std::stringstream*>& messages(MXerrorMsgs* e) { return e->*M; }
};
template struct ErrorList<&MXerrorMsgs::messages>;
std::vector<std::stringstream*>& messages(MXerrorMsgs* e);

std::ostream& error(bool maps) {
  auto& list = messages(MXerrorMsgs::get());
  for (std::stringstream* m : list) delete m;
  list.clear();
  return MX_ERROR_MSG << (maps ? "gluon_classics_conv_pool_maps: " : "gluon_classics_conv_pool: ");
}

// "name = 'value'" (its first 40 characters), or "name is missing"
std::string named(const Attrs& attrs, const char* name) {
  const auto it = attrs.find(name);
  if (it == attrs.end()) return std::string(name) + " is missing";
  const std::string& v = it->second;
  return std::string(name) + " = '" + (v.size() > 40 ? v.substr(0, 40) + "..." : v) + "'";
}

// The attribute as an integer in lo..hi, all of it digits (std::stoi reads
// "3abc" as 3), or why not ("" when good).
std::string integer(const Attrs& attrs, const char* name, int64_t lo, int64_t hi, int* out) {
  const auto it = attrs.find(name);
  int64_t v = -1;
  if (it != attrs.end()) {
    const char *first = it->second.data(), *last = first + it->second.size();
    const auto [end, ec] = std::from_chars(first, last, v);
    if (ec == std::errc() && end == last && v >= lo && v <= hi) {
      *out = static_cast<int>(v);
      return "";
    }
  }
  return named(attrs, name) + ": wants an integer in " + std::to_string(lo) + ".." +
         std::to_string(hi);
}

// The attributes, or why not ("" when good). Maps: gluon_classics_conv_pool_maps'.
std::string parse(const Attrs& attrs, bool maps, Params* p) {
  std::string why;
  if (!(why = integer(attrs, "pad", 0, kMaxPad, &p->pad)).empty() ||
      !(why = integer(attrs, "pool_size", 1, kMaxPool, &p->pool_size)).empty())
    return why;
  if (!maps && kCols % p->pool_size)  // its pooling works in tiles of kCols columns
    return named(attrs, "pool_size") + ": wants 1, 2, 4, 8, 16 or 32 (a divisor of the "
                                       "32-column tile)";
  p->out_channels = 0;
  if (maps && attrs.count("out_channels"))
    return "out_channels: not an attribute of this operator (gluon_classics_conv_pool's only)";
  if (!maps && !(why = integer(attrs, "out_channels", 1, kMaxChannels, &p->out_channels)).empty())
    return why;
  const auto act = attrs.find("act"), pool = attrs.find("pool");
  const std::string a = act == attrs.end() ? "" : act->second;
  if (a == "sigmoid") p->act = Params::kSigmoid;
  else if (a == "relu") p->act = Params::kRelu;
  else if (a == "identity") p->act = Params::kIdentity;
  else return named(attrs, "act") + ": wants sigmoid, relu or identity";
  if (pool == attrs.end() || (pool->second != "max" && pool->second != "avg"))
    return named(attrs, "pool") + ": wants max or avg";
  p->max_pool = pool->second == "max";
  return "";
}

std::string text(const std::vector<unsigned int>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// a * b * ..., or -1 where that passes `limit` (factors >= 0)
int64_t product(std::initializer_list<int64_t> factors, int64_t limit) {
  int64_t n = 1;
  for (int64_t f : factors)
    if (f == 0) return 0;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(n, f, &n) || n > limit) return -1;
  return n;
}

// The output's shape from x's, the weight's and the bias', or why not ("" when good).
std::string infer(const std::vector<std::vector<unsigned int>>& in, bool maps, const Params& p,
                  std::vector<unsigned int>* out) {
  const auto &x = in[0], &w = in[1], &b = in[2];
  const auto within = [](int64_t v, int64_t hi) { return v >= 1 && v <= hi; };
  std::ostringstream why;
  if (x.size() != 4 || !within(x[1], maps ? kMaxChannels : 1) || !within(x[2], kMaxSide) ||
      !within(x[3], kMaxSide))
    why << "x " << text(x) << ": wants " << (maps ? "(N, C, H, W) with C in 1..4096 and" :
                                                    "(N, 1, H, W) with")
        << " H, W in 1.." << kMaxSide;
  else if (w.size() != 4 || !within(w[0], kMaxChannels) || w[1] != x[1] || w[2] != w[3] ||
           !within(w[2], kMaxK))
    why << "weight " << text(w) << ": wants (F, " << x[1] << ", k, k) with F in 1.."
        << kMaxChannels << " and k in 1.." << kMaxK;
  else if (b.size() != 1 || b[0] != w[0])
    why << "bias " << text(b) << ": wants (" << w[0] << ",), one per filter";
  else if (!maps && p.out_channels < static_cast<int64_t>(w[0]))
    why << "out_channels = " << p.out_channels << ": wants " << w[0] << ".." << kMaxChannels
        << " (at least the weight's " << w[0] << " filters)";
  if (!why.str().empty()) return why.str();
  const int64_t k = w[2], hp = x[2] + 2 * int64_t{p.pad}, wp = x[3] + 2 * int64_t{p.pad};
  const int64_t ho = hp - k + 1, wo = wp - k + 1, q = p.pool_size;
  if (ho < 1 || wo < 1)
    why << "weight " << text(w) << ": its " << k << "x" << k << " kernel is larger than the "
        << "padded image, " << hp << "x" << wp << " (H + 2 * pad by W + 2 * pad)";
  else if (ho < q || wo < q)
    why << "pool_size = " << q << ": wants at most the conv's output, " << ho << "x" << wo
        << " (H + 2 * pad - k + 1 by W + 2 * pad - k + 1)";
  if (!why.str().empty()) return why.str();
  const int64_t co = maps ? w[0] : p.out_channels, wide = std::max<int64_t>(co, x[1]);
  const int64_t size = product({x[0], co, ho / q, wo / q}, kMaxOutput);
  if (size < 0) {
    why << "the output (" << x[0] << ", " << co << ", " << ho / q << ", " << wo / q
        << ") passes MXNet's 2^31 - 1 floats: use smaller batches";
    return why.str();
  }
  // what a forward keeps (activations, input copies) or a thread holds, at most
  if (product({x[0], (wide + kLanes - 1) / kLanes * kLanes, hp, wp + kCols}, kMaxKept) < 0) {
    why << "a batch of " << x[0] << " needs more than 2^34 floats (64 GiB) of activations: "
        << "use smaller batches";
    return why.str();
  }
  *out = {x[0], static_cast<unsigned>(co), static_cast<unsigned>(ho / q),
          static_cast<unsigned>(wo / q)};
  return "";
}

// parse(), its refusal reported as the operator's error
template <bool Maps>
bool parsed(const Attrs& attrs, Params* p) {
  const std::string why = parse(attrs, Maps, p);
  if (!why.empty()) error(Maps) << why;
  return why.empty();
}

template <bool Maps, class Op>
MXReturnValue create_state(const Attrs& attrs, const MXContext& ctx,
                           const std::vector<std::vector<unsigned int>>& shapes,
                           const std::vector<int> types, CustomStatefulOp** op) {
  Params p;
  if (!parsed<Maps>(attrs, &p)) return MX_FAIL;
  *op = CustomStatefulOp::create<Op>(p);
  return MX_SUCCESS;
}

template <bool Maps>
MXReturnValue parse_attrs(const Attrs& attrs, int* num_in, int* num_out) {
  Params p;
  if (!parsed<Maps>(attrs, &p)) return MX_FAIL;
  *num_in = 3;
  *num_out = 1;
  return MX_SUCCESS;
}

template <bool Maps>
MXReturnValue infer_type(const Attrs& attrs, std::vector<int>* in_types,
                         std::vector<int>* out_types) {
  for (int t : *in_types)
    if (t != kFloat32) {
      error(Maps) << "x, weight and bias: float32 only";
      return MX_FAIL;
    }
  (*out_types)[0] = kFloat32;
  return MX_SUCCESS;
}

template <bool Maps>
MXReturnValue infer_shape(const Attrs& attrs, std::vector<std::vector<unsigned int>>* in,
                          std::vector<std::vector<unsigned int>>* out) {
  Params p;
  std::string why = parse(attrs, Maps, &p);
  if (why.empty()) why = infer(*in, Maps, p, &(*out)[0]);
  if (!why.empty()) {
    error(Maps) << why;
    return MX_FAIL;
  }
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gluon_classics_conv_pool)
    .setCreateOpState(create_state<false, Keeping<forward_pass, backward_pass>>, "cpu")
    .setParseAttrs(parse_attrs<false>)
    .setInferType(infer_type<false>)
    .setInferShape(infer_shape<false>);

REGISTER_OP(gluon_classics_conv_pool_maps)
    .setCreateOpState(create_state<true, Keeping<maps_forward, maps_backward>>, "cpu")
    .setParseAttrs(parse_attrs<true>)
    .setInferType(infer_type<true>)
    .setInferShape(infer_shape<true>);

MXReturnValue initialize(int version) {
  return version >= 10900 ? MX_SUCCESS : MX_FAIL;
}

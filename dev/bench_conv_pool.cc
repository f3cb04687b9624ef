// Times our two operators (gluon_classics/accel/conv_pool.cc) outside MXNet:
// forward and backward of LeNet's conv blocks at batch 256 (or argv[1]),
// on OMP_NUM_THREADS threads, as MXNet's stateful operator calls them
// (forward_pass/backward_pass and maps_forward/maps_backward with what the
// forward kept). Prints one row per operator, activation/pooling and phase:
// the median and the best time per image over the repeats (argv[2], default
// 30; on a busy machine the best is the better estimate), and at the median the
// conv's multiply-adds per second (2 FLOPs a tap; the forward's conv once, the
// backward's weight gradient, and for the maps operator its input's gradient
// too; activations and pooling are not counted).
//
// Build and run: python -m dev.conv_pool time-native (dev/Makefile: build.py's flags).
#include "../gluon_classics/accel/conv_pool.cc"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Buffer {  // a float32 tensor on a std::vector, as MXNet hands the operators theirs
  std::vector<int64_t> shape;
  std::vector<float> data;
  explicit Buffer(std::vector<int64_t> s, std::mt19937* rng = nullptr, float scale = 1.0f)
      : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.assign(n, 0.0f);
    std::normal_distribution<float> normal(0.0f, scale);
    if (rng)
      for (float& v : data) v = normal(*rng);
  }
  MXTensor tensor() { return MXTensor(data.data(), shape, kFloat32, 0, MXContext("cpu", 0)); }
};

struct Case {
  const char* op;  // conv_pool or conv_pool_maps
  std::vector<int64_t> x, w;
  int pad;
  const char *act, *pool;
};

struct Seconds {
  double median, best;
};

template <class F>
Seconds seconds_per_call(F&& run, int repeats) {
  for (int i = 0; i < 3; ++i) run();  // warm up: caches, page faults, OpenMP's threads
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    times.push_back(took.count());
  }
  std::sort(times.begin(), times.end());
  return {times[repeats / 2], times[0]};
}

// Times one case; returns a checksum of its results (so that nothing is optimized away).
double bench(const Case& c, int repeats) {
  const bool maps = std::string(c.op) == "conv_pool_maps";
  const int64_t n = c.x[0], f = c.w[0], ci = c.w[1], k = c.w[2];
  const Attrs attrs = {{"pad", std::to_string(c.pad)}, {"act", c.act}, {"pool", c.pool},
                       {"pool_size", "2"}, {"out_channels", std::to_string(f)}};
  Attrs used = attrs;
  if (maps) used.erase("out_channels");
  Params p;
  const std::string why = parse(used, maps, &p);
  if (!why.empty()) {
    std::fprintf(stderr, "%s: %s\n", c.op, why.c_str());
    std::exit(1);
  }
  const int64_t ho = c.x[2] + 2 * c.pad - k + 1, wo = c.x[3] + 2 * c.pad - k + 1;
  std::mt19937 rng(0);
  Buffer x(c.x, &rng), w(c.w, &rng, 0.2f), b({f}, &rng), y({n, f, ho / 2, wo / 2});
  Buffer dy(y.shape, &rng), dx(c.x), dw(c.w), db({f});
  std::vector<MXTensor> inputs = {x.tensor(), w.tensor(), b.tensor()};
  std::vector<MXTensor> grads_in = {dy.tensor(), x.tensor(), w.tensor(), b.tensor(), y.tensor()};
  std::vector<MXTensor> grads_out = {dx.tensor(), dw.tensor(), db.tensor()};
  MXTensor out = y.tensor();
  Kept kept;
  const auto forward = [&] { (maps ? maps_forward : forward_pass)(p, inputs, out, &kept); };
  const auto backward = [&] {
    (maps ? maps_backward : backward_pass)(p, grads_in, grads_out, kept);
  };
  const double conv_flops = 2.0 * n * f * ci * k * k * ho * wo;
  const Seconds seconds[] = {seconds_per_call(forward, repeats),
                             seconds_per_call(backward, repeats)};
  const double flops[] = {conv_flops, conv_flops * (maps ? 2 : 1)};
  const char* phases[] = {"forward", "backward"};
  for (int i = 0; i < 2; ++i)
    std::printf("%-15s %-12s %-9s %10.2f %10.2f %9.1f\n", c.op,
                (std::string(c.act) + "/" + c.pool).c_str(), phases[i],
                seconds[i].median / n * 1e6, seconds[i].best / n * 1e6,
                flops[i] / seconds[i].median / 1e9);
  double sum = 0;
  for (const Buffer* t : {&y, &dx, &dw, &db})
    for (float v : t->data) sum += v;
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 256;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 30;
  if (batch < 1 || repeats < 1) {
    std::fprintf(stderr, "usage: %s [batch >= 1 (256)] [repeats >= 1 (30)]\n", argv[0]);
    return 2;
  }
  std::printf("batch %lld, %d repeats, %d OpenMP threads, %s\n",
              static_cast<long long>(batch), repeats, omp_get_max_threads(),
#ifdef __AVX512F__
              "AVX-512 tiles");
#else
              "AVX2 tiles");
#endif
  std::printf("%-15s %-12s %-9s %10s %10s %9s\n", "operator", "act/pool", "phase", "us/image",
              "best", "GFLOP/s");
  const Case cases[] = {  // LeNet's two conv blocks: d2l's (sigmoid, avg), and relu, max
      {"conv_pool", {batch, 1, 28, 28}, {6, 1, 5, 5}, 2, "sigmoid", "avg"},
      {"conv_pool", {batch, 1, 28, 28}, {6, 1, 5, 5}, 2, "relu", "max"},
      {"conv_pool_maps", {batch, 6, 14, 14}, {16, 6, 5, 5}, 0, "sigmoid", "avg"},
      {"conv_pool_maps", {batch, 6, 14, 14}, {16, 6, 5, 5}, 0, "relu", "max"},
  };
  double checksum = 0;
  for (const Case& c : cases) checksum += bench(c, repeats);
  std::printf("checksum %.6g\n", checksum);
  return 0;
}

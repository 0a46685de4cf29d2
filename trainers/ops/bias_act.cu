// Fused bias + activation + gain + clamp for StyleGAN2, and its first two derivatives.
//
// One elementwise kernel serves three modes, all recomputed from the pre-activation
// s = x + b so the backward passes need only x (and b), never the output:
//   mode 0: y   = clamp(act(s) * gain)
//   mode 1: out = grad * gain * act'(s)   where the clamp did not cut, else 0
//   mode 2: out = grad * gain * act''(s)  where the clamp did not cut, else 0
// Mode 1 is the gradient of mode 0 with respect to s; mode 2 is what R1's double
// backward needs from mode 1.
//   mode 3: out = grad * gain * act'(s)   as mode 1, read from the output y (passed as x,
//           no bias) for the piecewise-linear acts (linear, relu, lrelu with alpha >= 0,
//           gain > 0): their slope follows from y's sign and the clamp cut where |y|
//           reached it. The backward pass then keeps y, which the next layer keeps
//           anyway, instead of x: one activation-sized tensor less per layer.

#include <algorithm>

#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "bias_act.h"

namespace {

// Must match ACTIVATION_CODES in bias_act.py.
enum Activation : int {
  kLinear = 0,
  kRelu = 1,
  kLrelu = 2,
  kTanh = 3,
  kSigmoid = 4,
  kElu = 5,
  kSelu = 6,
  kSoftplus = 7,
  kSwish = 8,
};

// libm's precise functions (2 ulp in float): this file is built without --use_fast_math
// (custom_ops.FAST_MATH_SOURCES), under which tanhf would be tanh.approx.f32, ~11 bits.
__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }
__device__ __forceinline__ float tanh_of(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_of(double v) { return tanh(v); }
__device__ __forceinline__ float log1p_of(float v) { return log1pf(v); }
__device__ __forceinline__ double log1p_of(double v) { return log1p(v); }

template <typename T>
struct Taylor {
  T value;  // act(s)
  T d1;     // act'(s)
  T d2;     // act''(s)
};

template <typename T>
__device__ __forceinline__ T sigmoid_of(T s) {
  return T(1) / (T(1) + exp_of(-s));
}

// act(s) and its first two derivatives, with the conventions of torch's own ops at
// the kinks (relu' = 0 and lrelu' = alpha at s = 0) so the fused path equals the
// reference path exactly there too.
template <typename T>
__device__ __forceinline__ Taylor<T> activate(int act, T s, T alpha) {
  switch (act) {
    case kRelu:
      return s > T(0) ? Taylor<T>{s, T(1), T(0)} : Taylor<T>{T(0), T(0), T(0)};
    case kLrelu:
      return s > T(0) ? Taylor<T>{s, T(1), T(0)} : Taylor<T>{s * alpha, alpha, T(0)};
    case kTanh: {
      // 1 - t^2 as torch's tanh_backward computes it: near saturation it loses relative
      // precision, but its absolute error stays ~eps, which is what the sums downstream see.
      const T t = tanh_of(s);
      const T d1 = T(1) - t * t;
      return {t, d1, T(-2) * t * d1};
    }
    case kSigmoid: {
      const T g = sigmoid_of(s);
      const T d1 = g * (T(1) - g);
      return {g, d1, d1 * (T(1) - T(2) * g)};
    }
    case kElu: {  // alpha 1, as torch.nn.functional.elu's default
      if (s > T(0)) return {s, T(1), T(0)};
      const T e = exp_of(s);
      return {e - T(1), e, e};
    }
    case kSelu: {
      const T scale = T(1.0507009873554804934193349852946);
      const T a = T(1.6732632423543772848170429916717);
      if (s > T(0)) return {scale * s, scale, T(0)};
      const T e = exp_of(s);
      return {scale * a * (e - T(1)), scale * a * e, scale * a * e};
    }
    case kSoftplus: {  // threshold 20, as torch.nn.functional.softplus's default
      if (s > T(20)) return {s, T(1), T(0)};
      const T g = sigmoid_of(s);
      return {log1p_of(exp_of(s)), g, g * (T(1) - g)};
    }
    case kSwish: {
      const T g = sigmoid_of(s);
      const T d1 = g + s * g * (T(1) - g);
      return {s * g, d1, g * (T(1) - g) * (T(2) + s * (T(1) - T(2) * g))};
    }
    default:  // kLinear
      return {s, T(1), T(0)};
  }
}

struct Params {
  int64_t numel;
  int64_t channels;  // x.shape[dim]; 0 when there is no bias
  int64_t inner;     // elements between two channels in memory order
  int act;
  int mode;
  double alpha;
  double gain;
  double clamp;  // < 0: no clamp
};

template <typename scalar_t>
__global__ void bias_act_kernel(
    scalar_t* __restrict__ out,
    const scalar_t* __restrict__ x,
    const scalar_t* __restrict__ b,
    const scalar_t* __restrict__ grad,
    Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t alpha = static_cast<acc_t>(p.alpha);
  const acc_t gain = static_cast<acc_t>(p.gain);
  const acc_t clamp = static_cast<acc_t>(p.clamp);
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.numel;
       i += stride) {
    if (p.mode == 3) {
      const acc_t y = static_cast<acc_t>(x[i]);
      const bool at_clamp = clamp >= acc_t(0) && (y <= -clamp || y >= clamp);
      acc_t d1 = acc_t(1);
      if (p.act == kRelu) d1 = y > acc_t(0) ? acc_t(1) : acc_t(0);
      if (p.act == kLrelu) d1 = y > acc_t(0) ? acc_t(1) : alpha;
      const acc_t slope = at_clamp ? acc_t(0) : gain * d1;
      out[i] = static_cast<scalar_t>(static_cast<acc_t>(grad[i]) * slope);
      continue;
    }
    acc_t s = static_cast<acc_t>(x[i]);
    if (p.channels > 0) s += static_cast<acc_t>(b[(i / p.inner) % p.channels]);
    const Taylor<acc_t> a = activate(p.act, s, alpha);
    const acc_t y = a.value * gain;
    const bool cut = clamp >= acc_t(0) && (y < -clamp || y > clamp);
    acc_t result;
    if (p.mode == 0) {
      result = cut ? (y > acc_t(0) ? clamp : -clamp) : y;
    } else {
      const acc_t slope = cut ? acc_t(0) : gain * (p.mode == 1 ? a.d1 : a.d2);
      result = static_cast<acc_t>(grad[i]) * slope;
    }
    out[i] = static_cast<scalar_t>(result);
  }
}

// Elements between two consecutive channels of `dim`, in x's memory order, or -1 when
// x is neither contiguous nor channels_last with dim 1.
int64_t channel_inner(const torch::Tensor& x, int64_t dim) {
  if (x.is_contiguous()) {
    int64_t inner = 1;
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
    return inner;
  }
  if (x.dim() == 4 && dim == 1 && x.is_contiguous(at::MemoryFormat::ChannelsLast)) return 1;
  return -1;
}

}  // namespace

torch::Tensor bias_act_cuda(
    torch::Tensor x,
    torch::Tensor b,
    torch::Tensor grad,
    int64_t dim,
    int64_t act,
    double alpha,
    double gain,
    double clamp,
    int64_t mode) {
  TORCH_CHECK(x.is_cuda(), "bias_act: x must be on a CUDA device");
  TORCH_CHECK(mode >= 0 && mode <= 3, "bias_act: mode must be 0, 1, 2 or 3");
  TORCH_CHECK(act >= kLinear && act <= kSwish, "bias_act: unknown activation code ", act);
  TORCH_CHECK(mode != 3 || ((act == kLinear || act == kRelu || act == kLrelu) &&
                            b.numel() == 0 && gain > 0 && alpha >= 0),
              "bias_act: mode 3 takes the output of linear, relu or lrelu (alpha >= 0, "
              "gain > 0) and no bias");
  TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
  const int64_t inner = channel_inner(x, dim);
  TORCH_CHECK(inner >= 0, "bias_act: x must be contiguous or channels_last (dim 1)");
  const bool has_bias = b.numel() > 0;
  if (has_bias) {
    TORCH_CHECK(b.is_cuda() && b.dim() == 1 && b.size(0) == x.size(dim) && b.is_contiguous(),
                "bias_act: b must be a contiguous CUDA tensor of shape [x.shape[dim]]");
    TORCH_CHECK(b.scalar_type() == x.scalar_type(), "bias_act: b must have x's dtype");
  }
  if (mode != 0) {
    const bool same_order = x.is_contiguous()
                                ? grad.is_contiguous()
                                : grad.is_contiguous(at::MemoryFormat::ChannelsLast);
    TORCH_CHECK(grad.sizes() == x.sizes() && same_order,
                "bias_act: grad must have x's shape and memory layout");
    TORCH_CHECK(grad.scalar_type() == x.scalar_type(), "bias_act: grad must have x's dtype");
  }
  TORCH_CHECK(x.numel() < (int64_t(1) << 40), "bias_act: x is too large");

  const c10::cuda::CUDAGuard guard(x.device());
  torch::Tensor out = torch::empty_like(x);
  if (x.numel() == 0) return out;

  Params p;
  p.numel = x.numel();
  p.channels = has_bias ? x.size(dim) : 0;
  p.inner = inner > 0 ? inner : 1;
  p.act = static_cast<int>(act);
  p.mode = static_cast<int>(mode);
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;

  const int threads = 256;
  const int64_t wanted = (p.numel + threads - 1) / threads;
  const int blocks = static_cast<int>(std::min<int64_t>(wanted, 65536));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "bias_act_cuda", [&] {
        bias_act_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
            out.data_ptr<scalar_t>(),
            x.data_ptr<scalar_t>(),
            has_bias ? b.data_ptr<scalar_t>() : nullptr,
            mode != 0 ? grad.data_ptr<scalar_t>() : nullptr,
            p);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

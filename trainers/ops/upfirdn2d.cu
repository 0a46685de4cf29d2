// Fused upsample + FIR filter + downsample of [N, C, H, W] tensors for StyleGAN2.
//
// One thread computes one output pixel directly from the input: of the filter taps that
// fall on the zero-inserted (upsampled) image only every up-th one meets a real pixel,
// so the loop visits just those and the upsampled image is never made. The filter sits
// in shared memory; it arrives flipped and scaled, so the kernel only correlates.

#include <algorithm>

#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "upfirdn2d.h"

namespace {

constexpr int64_t kMaxFilterTaps = 64 * 64;  // shared-memory bound: 16 KiB in float

struct Geometry {
  int64_t numel;  // output elements
  int channels, in_h, in_w, out_h, out_w;
  int upx, upy, downx, downy, padx0, pady0;
  int fh, fw;
  int64_t sn, sc, sh, sw;  // input strides in elements (any layout)
  bool channels_last;      // output memory order
};

// The first tap k >= 0 whose position u0 + k is a non-negative multiple of `up`.
__device__ __forceinline__ int first_tap(int u0, int up) {
  int k = u0 < 0 ? -u0 : 0;
  const int r = (u0 + k) % up;
  return r == 0 ? k : k + up - r;
}

template <typename scalar_t>
__global__ void upfirdn2d_kernel(
    scalar_t* __restrict__ out,
    const scalar_t* __restrict__ x,
    const at::opmath_type<scalar_t>* __restrict__ f,
    Geometry g) {
  using acc_t = at::opmath_type<scalar_t>;
  extern __shared__ unsigned char shared_bytes[];
  acc_t* taps = reinterpret_cast<acc_t*>(shared_bytes);
  for (int k = threadIdx.x; k < g.fh * g.fw; k += blockDim.x) taps[k] = f[k];
  __syncthreads();

  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < g.numel;
       i += stride) {
    // i walks the output in its memory order, so neighbouring threads write neighbours.
    int64_t rest = i;
    int c, ox, oy;
    if (g.channels_last) {
      c = static_cast<int>(rest % g.channels); rest /= g.channels;
      ox = static_cast<int>(rest % g.out_w); rest /= g.out_w;
      oy = static_cast<int>(rest % g.out_h); rest /= g.out_h;
    } else {
      ox = static_cast<int>(rest % g.out_w); rest /= g.out_w;
      oy = static_cast<int>(rest % g.out_h); rest /= g.out_h;
      c = static_cast<int>(rest % g.channels); rest /= g.channels;
    }
    const int64_t n = rest;

    // Position of tap 0 in the zero-inserted image before padding.
    const int u0y = oy * g.downy - g.pady0;
    const int u0x = ox * g.downx - g.padx0;
    const int ky0 = first_tap(u0y, g.upy);
    const int kx0 = first_tap(u0x, g.upx);
    const scalar_t* plane = x + n * g.sn + c * g.sc;
    acc_t acc = acc_t(0);
    for (int ky = ky0; ky < g.fh; ky += g.upy) {
      const int iy = (u0y + ky) / g.upy;
      if (iy >= g.in_h) break;
      const scalar_t* row = plane + iy * g.sh;
      const acc_t* taps_row = taps + ky * g.fw;
      for (int kx = kx0; kx < g.fw; kx += g.upx) {
        const int ix = (u0x + kx) / g.upx;
        if (ix >= g.in_w) break;
        acc += taps_row[kx] * static_cast<acc_t>(row[ix * g.sw]);
      }
    }
    out[i] = static_cast<scalar_t>(acc);
  }
}

}  // namespace

torch::Tensor upfirdn2d_cuda(
    torch::Tensor x,
    torch::Tensor f,
    int64_t upx,
    int64_t upy,
    int64_t downx,
    int64_t downy,
    int64_t padx0,
    int64_t padx1,
    int64_t pady0,
    int64_t pady1) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 4, "upfirdn2d: x must be a [N, C, H, W] CUDA tensor");
  TORCH_CHECK(f.is_cuda() && f.dim() == 2 && f.is_contiguous(),
              "upfirdn2d: f must be a contiguous [fh, fw] CUDA tensor");
  const auto acc_type =
      x.scalar_type() == at::ScalarType::Double ? at::ScalarType::Double : at::ScalarType::Float;
  TORCH_CHECK(f.scalar_type() == acc_type, "upfirdn2d: f must be float32 (float64 for double x)");
  TORCH_CHECK(f.numel() >= 1 && f.numel() <= kMaxFilterTaps, "upfirdn2d: filter too large");
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1,
              "upfirdn2d: scaling factors must be >= 1");
  TORCH_CHECK(x.size(2) * upy < (1 << 30) && x.size(3) * upx < (1 << 30),
              "upfirdn2d: image too large");

  const int64_t fh = f.size(0), fw = f.size(1);
  const int64_t out_h = (x.size(2) * upy + pady0 + pady1 - fh + downy) / downy;
  const int64_t out_w = (x.size(3) * upx + padx0 + padx1 - fw + downx) / downx;
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d: the output would be empty");

  const bool channels_last =
      !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  const c10::cuda::CUDAGuard guard(x.device());
  torch::Tensor out = torch::empty(
      {x.size(0), x.size(1), out_h, out_w},
      x.options().memory_format(channels_last ? at::MemoryFormat::ChannelsLast
                                              : at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;

  Geometry g;
  g.numel = out.numel();
  g.channels = static_cast<int>(x.size(1));
  g.in_h = static_cast<int>(x.size(2));
  g.in_w = static_cast<int>(x.size(3));
  g.out_h = static_cast<int>(out_h);
  g.out_w = static_cast<int>(out_w);
  g.upx = static_cast<int>(upx);
  g.upy = static_cast<int>(upy);
  g.downx = static_cast<int>(downx);
  g.downy = static_cast<int>(downy);
  g.padx0 = static_cast<int>(padx0);
  g.pady0 = static_cast<int>(pady0);
  g.fh = static_cast<int>(fh);
  g.fw = static_cast<int>(fw);
  g.sn = x.stride(0);
  g.sc = x.stride(1);
  g.sh = x.stride(2);
  g.sw = x.stride(3);
  g.channels_last = channels_last;

  const int threads = 256;
  const int64_t wanted = (g.numel + threads - 1) / threads;
  const int blocks = static_cast<int>(std::min<int64_t>(wanted, 65536));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, x.scalar_type(), "upfirdn2d_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const size_t shared = static_cast<size_t>(f.numel()) * sizeof(acc_t);
        upfirdn2d_kernel<scalar_t><<<blocks, threads, shared, stream>>>(
            out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), f.data_ptr<acc_t>(), g);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

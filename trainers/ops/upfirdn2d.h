// Declaration shared by upfirdn2d.cpp (the Python binding) and upfirdn2d.cu (the kernel).
#pragma once

#include <torch/extension.h>

// Zero-insert x [N, C, H, W] by (upx, upy), pad by (padx0, padx1, pady0, pady1) (negative
// crops), correlate with the 2-D filter f [fh, fw] and keep every (downx, downy)-th pixel.
// f is already flipped and scaled as the caller wants it applied.
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
    int64_t pady1);

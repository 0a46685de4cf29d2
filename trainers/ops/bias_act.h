// Declaration shared by bias_act.cpp (the Python binding) and bias_act.cu (the kernel).
#pragma once

#include <torch/extension.h>

// mode 0: clamp(act(x + b) * gain); 1: grad times its first derivative; 2: the second;
// 3: as 1, with x holding the output y of a piecewise-linear act (no bias).
// b and grad may be empty tensors (no bias; mode 0). clamp < 0 means no clamp.
torch::Tensor bias_act_cuda(
    torch::Tensor x,
    torch::Tensor b,
    torch::Tensor grad,
    int64_t dim,
    int64_t act,
    double alpha,
    double gain,
    double clamp,
    int64_t mode);

// Python binding of the fused upfirdn2d kernel (built by lyriscope.trainers.ops.custom_ops).
#include <torch/extension.h>

#include "upfirdn2d.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("upfirdn2d", &upfirdn2d_cuda,
        "zero-insert, pad, correlate with f and subsample a [N, C, H, W] tensor",
        pybind11::arg("x"), pybind11::arg("f"), pybind11::arg("upx"), pybind11::arg("upy"),
        pybind11::arg("downx"), pybind11::arg("downy"), pybind11::arg("padx0"),
        pybind11::arg("padx1"), pybind11::arg("pady0"), pybind11::arg("pady1"));
}

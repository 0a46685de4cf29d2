// Python binding of the fused bias_act kernel (built by lyriscope.trainers.ops.custom_ops).
#include <torch/extension.h>

#include "bias_act.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("bias_act", &bias_act_cuda,
        "clamp(act(x + b) * gain) (mode 0) or its first (1; 3: from the output) / second (2) "
        "derivative times grad",
        pybind11::arg("x"), pybind11::arg("b"), pybind11::arg("grad"), pybind11::arg("dim"),
        pybind11::arg("act"), pybind11::arg("alpha"), pybind11::arg("gain"),
        pybind11::arg("clamp"), pybind11::arg("mode"));
}

// One Adam step over a list of parameters through libtorch's fused kernel (`_fused_adam_`, as
// `torch.optim.Adam(fused=True)`): a single pass per parameter that reads the gradient and the
// moments and writes the moments and the parameter, where the composite version makes five or
// six passes and two temporaries of each parameter's size.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <optional>
#include <vector>

#include "guarded.h"

namespace {

std::vector<at::Tensor> list(const at::Tensor* const* tensors, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) out.push_back(*tensors[i]);
  return out;
}

}  // namespace

// `step` is the step being taken (1 for the first); the gradients are divided by `grad_scale`
// (clipping by a factor c is grad_scale = 1 / c) and left divided.
extern "C" const char* hone_fused_adam(const at::Tensor* const* params, const at::Tensor* const* grads,
                                       const at::Tensor* const* exp_avgs,
                                       const at::Tensor* const* exp_avg_sqs, int64_t n, int64_t step,
                                       double lr, double beta1, double beta2, double eps,
                                       double grad_scale) {
  return hone::guarded([&] {
    if (n == 0) return;
    c10::NoGradGuard no_grad;
    const auto options = (*params)->options().dtype(at::kFloat);
    // The kernel reads each parameter's step from its own scalar tensor; one serves them all.
    const auto steps = at::full({}, static_cast<double>(step), options);
    std::optional<at::Tensor> scale;
    if (grad_scale != 1.0) scale = at::full({}, grad_scale, options);
    at::_fused_adam_(list(params, n), list(grads, n), list(exp_avgs, n), list(exp_avg_sqs, n), {},
                     std::vector<at::Tensor>(n, steps), lr, beta1, beta2, /*weight_decay=*/0.0,
                     eps, /*amsgrad=*/false, /*maximize=*/false, scale, std::nullopt);
  });
}

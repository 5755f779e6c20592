// Custom autograd functions for per-token log-probabilities and entropies of [B, T, V] logits.
//
// Both walk the sequence in chunks of `chunk` positions, so the forward and the backward hold
// O(B x chunk x V) temporaries, and autograd keeps only the logits themselves (which the caller
// holds anyway) rather than a [B, T, V] log-softmax. tch cannot define a backward from Rust,
// hence C++. The Rust side (src/tensor/token.rs) validates shapes, kinds and token ranges first.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <string>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// Half-precision logits are reduced in float32; float64 stays float64.
at::ScalarType accumulate_type(const at::Tensor& logits) {
  return logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// -inf logits (filtered tokens) have probability 0; clamping them to the lowest finite value
// makes p * x equal 0 there instead of 0 * -inf = NaN.
at::Tensor finite_from_below(const at::Tensor& x) {
  const double lowest = x.scalar_type() == at::kDouble ? std::numeric_limits<double>::lowest()
                                                        : std::numeric_limits<float>::lowest();
  return x.clamp_min(lowest);
}

struct TokenLogprobs : public torch::autograd::Function<TokenLogprobs> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& tokens, int64_t chunk) {
    const auto acc = accumulate_type(logits);
    const int64_t steps = logits.size(1);
    auto out = at::empty({logits.size(0), steps}, logits.options().dtype(acc));
    for (int64_t t0 = 0; t0 < steps; t0 += chunk) {
      const int64_t n = std::min(chunk, steps - t0);
      const auto x = logits.narrow(1, t0, n).to(acc);
      const auto picked = x.gather(-1, tokens.narrow(1, t0, n).unsqueeze(-1)).squeeze(-1);
      out.narrow(1, t0, n).copy_(picked - at::logsumexp(x, {-1}));
    }
    ctx->save_for_backward({logits, tokens});
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  // d logp[token] / d x = onehot(token) - softmax(x), scaled by the incoming gradient.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& logits = saved[0];
    const auto& tokens = saved[1];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto acc = accumulate_type(logits);
    const auto& grad_out = grad_outputs[0];
    const int64_t steps = logits.size(1);
    auto grad = at::empty(logits.sizes(), logits.options());
    for (int64_t t0 = 0; t0 < steps; t0 += chunk) {
      const int64_t n = std::min(chunk, steps - t0);
      const auto g = grad_out.narrow(1, t0, n).to(acc).unsqueeze(-1);
      auto d = logits.narrow(1, t0, n).to(acc).softmax(-1);
      d.mul_(g).neg_();
      d.scatter_add_(-1, tokens.narrow(1, t0, n).unsqueeze(-1), g);
      grad.narrow(1, t0, n).copy_(d);
    }
    return {grad, at::Tensor(), at::Tensor()};
  }
};

struct TokenEntropy : public torch::autograd::Function<TokenEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, int64_t chunk) {
    const auto acc = accumulate_type(logits);
    const int64_t steps = logits.size(1);
    auto out = at::empty({logits.size(0), steps}, logits.options().dtype(acc));
    for (int64_t t0 = 0; t0 < steps; t0 += chunk) {
      const int64_t n = std::min(chunk, steps - t0);
      const auto x = logits.narrow(1, t0, n).to(acc);
      const auto lse = at::logsumexp(x, {-1}, true);
      const auto p = (x - lse).exp_();
      // H = logsumexp(x) - sum_v p_v x_v
      out.narrow(1, t0, n).copy_(lse.squeeze(-1) - (p * finite_from_below(x)).sum(-1));
    }
    ctx->save_for_backward({logits});
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  // dH / dx_v = -p_v (log p_v + H), scaled by the incoming gradient.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& logits = saved[0];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto acc = accumulate_type(logits);
    const auto& grad_out = grad_outputs[0];
    const int64_t steps = logits.size(1);
    auto grad = at::empty(logits.sizes(), logits.options());
    for (int64_t t0 = 0; t0 < steps; t0 += chunk) {
      const int64_t n = std::min(chunk, steps - t0);
      const auto x = finite_from_below(logits.narrow(1, t0, n).to(acc));
      const auto lse = at::logsumexp(x, {-1}, true);
      auto p = (x - lse).exp_();
      const auto entropy = lse - (p * x).sum(-1, true);
      const auto g = grad_out.narrow(1, t0, n).to(acc).unsqueeze(-1);
      auto d = x - lse;
      d.add_(entropy).mul_(p).mul_(g).neg_();
      grad.narrow(1, t0, n).copy_(d);
    }
    return {grad, at::Tensor()};
  }
};

thread_local std::string last_error;

template <typename F>
const char* guarded(F&& f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return last_error.c_str();
}

}  // namespace

// Each returns nullptr on success (with *out a new tensor the caller owns), or an error message
// that stays valid until the next call on the same thread.
extern "C" const char* hone_token_logprobs(const at::Tensor* logits, const at::Tensor* tokens,
                                           int64_t chunk, at::Tensor** out) {
  return guarded([&] { *out = new at::Tensor(TokenLogprobs::apply(*logits, *tokens, chunk)); });
}

extern "C" const char* hone_token_entropy(const at::Tensor* logits, int64_t chunk,
                                          at::Tensor** out) {
  return guarded([&] { *out = new at::Tensor(TokenEntropy::apply(*logits, chunk)); });
}

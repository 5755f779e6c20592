// Custom autograd functions for per-token log-probabilities and entropies of [B, T, V] logits.
//
// Both walk each sequence in pieces of `chunk` positions, so the forward and the backward hold
// O(chunk x V) temporaries, and autograd keeps only the logits themselves (which the caller
// holds anyway) rather than a [B, T, V] log-softmax. tch cannot define a backward from Rust,
// hence C++. The Rust side (src/tensor/token.rs) validates shapes, kinds and token ranges first.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "guarded.h"

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

double lowest_finite(at::ScalarType type) {
  return type == at::kDouble ? std::numeric_limits<double>::lowest()
                             : std::numeric_limits<float>::lowest();
}

// Calls f(b, t0, n) for each piece [b, t0 .. t0 + n) of at most `chunk` positions. Pieces stay
// within one batch row so that a piece of a contiguous [B, T, V] tensor is contiguous too.
template <typename F>
void for_each_piece(const at::Tensor& logits, int64_t chunk, F&& f) {
  const int64_t batch = logits.size(0), steps = logits.size(1);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t0 = 0; t0 < steps; t0 += chunk) {
      f(b, t0, std::min(chunk, steps - t0));
    }
  }
}

at::Tensor piece(const at::Tensor& t, int64_t b, int64_t t0, int64_t n) {
  return t.select(0, b).narrow(0, t0, n);
}

struct TokenLogprobs : public torch::autograd::Function<TokenLogprobs> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits,
                            const at::Tensor& tokens, int64_t chunk) {
    const auto acc = accumulate_type(logits);
    auto out = at::empty({logits.size(0), logits.size(1)}, logits.options().dtype(acc));
    for_each_piece(logits, chunk, [&](int64_t b, int64_t t0, int64_t n) {
      const auto logp = at::log_softmax(piece(logits, b, t0, n), -1, acc);
      piece(out, b, t0, n).copy_(logp.gather(-1, piece(tokens, b, t0, n).unsqueeze(-1)).squeeze(-1));
    });
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
    const auto g = grad_outputs[0].to(acc);
    const auto neg_g = g.neg();
    auto grad = at::empty(logits.sizes(), logits.options().memory_format(at::MemoryFormat::Contiguous));
    const bool in_place = logits.scalar_type() == acc;
    for_each_piece(logits, chunk, [&](int64_t b, int64_t t0, int64_t n) {
      auto dst = piece(grad, b, t0, n);
      // Same kind: computed straight into the gradient; half kinds go through an f32 piece.
      auto d = in_place ? dst : at::empty(dst.sizes(), dst.options().dtype(acc));
      at::softmax_out(d, piece(logits, b, t0, n), -1, acc);
      d.mul_(piece(neg_g, b, t0, n).unsqueeze(-1));
      d.scatter_add_(-1, piece(tokens, b, t0, n).unsqueeze(-1), piece(g, b, t0, n).unsqueeze(-1));
      if (!in_place) dst.copy_(d);
    });
    return {grad, at::Tensor(), at::Tensor()};
  }
};

struct TokenEntropy : public torch::autograd::Function<TokenEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, int64_t chunk) {
    const auto acc = accumulate_type(logits);
    auto out = at::empty({logits.size(0), logits.size(1)}, logits.options().dtype(acc));
    for_each_piece(logits, chunk, [&](int64_t b, int64_t t0, int64_t n) {
      // entr(p) = -p ln p, and 0 where p = 0 (filtered -inf logits).
      const auto p = at::softmax(piece(logits, b, t0, n), -1, acc);
      piece(out, b, t0, n).copy_(at::special_entr(p).sum(-1));
    });
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
    const auto neg_g = grad_outputs[0].to(acc).neg();
    auto grad = at::empty(logits.sizes(), logits.options().memory_format(at::MemoryFormat::Contiguous));
    const bool in_place = logits.scalar_type() == acc;
    const double lowest = lowest_finite(acc);
    for_each_piece(logits, chunk, [&](int64_t b, int64_t t0, int64_t n) {
      auto dst = piece(grad, b, t0, n);
      auto d = in_place ? dst : at::empty(dst.sizes(), dst.options().dtype(acc));
      at::log_softmax_out(d, piece(logits, b, t0, n), -1, acc);
      // log p = -inf has p = 0: clamping keeps p * (log p + H) at 0 instead of NaN.
      d.clamp_min_(lowest);
      const auto p = d.exp();
      const auto entropy = at::special_entr(p).sum(-1, true);
      d.add_(entropy).mul_(p).mul_(piece(neg_g, b, t0, n).unsqueeze(-1));
      if (!in_place) dst.copy_(d);
    });
    return {grad, at::Tensor()};
  }
};

// Log-probabilities of the tokens under `hidden @ weight^T` (a bias-free LM head) without the
// [B, T, V] logits: each piece's logits are made, used and dropped, in the forward and again in
// the backward, which accumulates the gradients of `hidden` and `weight` piece by piece.
struct LinearTokenLogprobs : public torch::autograd::Function<LinearTokenLogprobs> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& tokens, int64_t chunk) {
    const auto acc = accumulate_type(hidden);
    auto out = at::empty({hidden.size(0), hidden.size(1)}, hidden.options().dtype(acc));
    const auto weight_t = weight.t();
    for_each_piece(hidden, chunk, [&](int64_t b, int64_t t0, int64_t n) {
      const auto logits = at::matmul(piece(hidden, b, t0, n), weight_t);
      const auto logp = at::log_softmax(logits, -1, acc);
      piece(out, b, t0, n).copy_(logp.gather(-1, piece(tokens, b, t0, n).unsqueeze(-1)).squeeze(-1));
    });
    ctx->save_for_backward({hidden, weight, tokens});
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];
    const auto& weight = saved[1];
    const auto& tokens = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto acc = accumulate_type(hidden);
    const auto g = grad_outputs[0].to(acc);
    const auto neg_g = g.neg();
    const bool want_hidden = ctx->needs_input_grad(0);
    const bool want_weight = ctx->needs_input_grad(1);
    at::Tensor grad_hidden, grad_weight;
    if (want_hidden) grad_hidden = at::empty(hidden.sizes(), hidden.options().memory_format(at::MemoryFormat::Contiguous));
    // Summed over every piece: accumulated in f32 (f64) even for half-precision weights.
    if (want_weight) grad_weight = at::zeros(weight.sizes(), weight.options().dtype(acc));
    const auto weight_t = weight.t();
    for_each_piece(hidden, chunk, [&](int64_t b, int64_t t0, int64_t n) {
      const auto h = piece(hidden, b, t0, n);
      // d logp / d logits = onehot(token) - softmax(logits), times the incoming gradient.
      auto d = at::softmax(at::matmul(h, weight_t), -1, acc);
      d.mul_(piece(neg_g, b, t0, n).unsqueeze(-1));
      d.scatter_add_(-1, piece(tokens, b, t0, n).unsqueeze(-1), piece(g, b, t0, n).unsqueeze(-1));
      if (want_hidden) piece(grad_hidden, b, t0, n).copy_(at::matmul(d.to(weight.scalar_type()), weight));
      if (want_weight) grad_weight.addmm_(d.t(), h.to(acc));
    });
    if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden, grad_weight, at::Tensor(), at::Tensor()};
  }
};


}  // namespace

// Each returns nullptr on success (with *out a new tensor the caller owns), or an error message
// that stays valid until the next call on the same thread.
extern "C" const char* hone_token_logprobs(const at::Tensor* logits, const at::Tensor* tokens,
                                           int64_t chunk, at::Tensor** out) {
  return hone::guarded([&] { *out = new at::Tensor(TokenLogprobs::apply(*logits, *tokens, chunk)); });
}

extern "C" const char* hone_token_entropy(const at::Tensor* logits, int64_t chunk,
                                          at::Tensor** out) {
  return hone::guarded([&] { *out = new at::Tensor(TokenEntropy::apply(*logits, chunk)); });
}

extern "C" const char* hone_linear_token_logprobs(const at::Tensor* hidden,
                                                  const at::Tensor* weight,
                                                  const at::Tensor* tokens, int64_t chunk,
                                                  at::Tensor** out) {
  return hone::guarded([&] {
    *out = new at::Tensor(LinearTokenLogprobs::apply(*hidden, *weight, *tokens, chunk));
  });
}

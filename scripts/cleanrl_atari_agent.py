#!/usr/bin/env python3
"""CleanRL's Atari agent run on hone's weights: the oracle of the Nature-CNN parity test
(trainer/src/policy/cnn.rs, `nature_cnn_matches_cleanrls_agent_in_pytorch`).

    $HONE_PYTHON scripts/cleanrl_atari_agent.py IN.safetensors OUT.safetensors

IN holds hone's named parameters (CleanRL's state_dict names), `obs` (uint8 [N, 4, 84, 84]) and
`actions` (int64 [N]). OUT gets `logits`, `log_prob`, `entropy`, `value` (flattened to [N], as
the update's `newvalue.view(-1)`) and `num_params`. One thread, float32, no gradients.
"""

import sys
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torch.distributions.categorical import Categorical


# Copied from cleanrl/ppo_atari_envpool.py (vwxyzjn/cleanrl), lines 117-149.
def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, envs):
        super().__init__()
        self.network = nn.Sequential(
            layer_init(nn.Conv2d(4, 32, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, 512)),
            nn.ReLU(),
        )
        self.actor = layer_init(nn.Linear(512, envs.single_action_space.n), std=0.01)
        self.critic = layer_init(nn.Linear(512, 1), std=1)

    def get_value(self, x):
        return self.critic(self.network(x / 255.0))

    def get_action_and_value(self, x, action=None):
        hidden = self.network(x / 255.0)
        logits = self.actor(hidden)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(hidden)


def main(source, destination):
    torch.set_num_threads(1)
    tensors = load_file(source)
    obs, actions = tensors.pop("obs"), tensors.pop("actions")
    n = tensors["actor.weight"].shape[0]
    agent = Agent(SimpleNamespace(single_action_space=SimpleNamespace(n=n)))
    agent.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        _, log_prob, entropy, value = agent.get_action_and_value(obs, actions)
        logits = agent.actor(agent.network(obs / 255.0))
    num_params = sum(p.numel() for p in agent.parameters())
    save_file(
        {
            "logits": logits.contiguous(),
            "log_prob": log_prob.contiguous(),
            "entropy": entropy.contiguous(),
            "value": value.view(-1).contiguous(),
            "num_params": torch.tensor([num_params], dtype=torch.int64),
        },
        destination,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Ports of torch.optim's rules that get one thing wrong, as a user's subclass would."""

import torch


class DecoupledAdam(torch.optim.Adam):
    """torch.optim.Adam whose weight decay is always AdamW's, applied to the weight (Adam's is L2, on the gradient)."""

    def __init__(self, params, **arguments):
        super().__init__(params, **{**arguments, "decoupled_weight_decay": True})

"""A KV cache whose storage is allocated once for a whole decoding run (`posttrain.generation.sampler`).

transformers' `DynamicCache` grows each layer's keys and values by `torch.cat` at every step, a copy of
the whole cache per token; here each full-attention layer writes its new positions into a slice of one
buffer sized for prompt + response, and finished rows leave it with `batch_select_indices`.
"""

from __future__ import annotations


def preallocated_cache(config, capacity: int):
    """A `DynamicCache` whose full-attention layers write into storage allocated once for the whole
    run, instead of growing by `torch.cat` at every step (a copy of the whole cache per token).
    Sliding-window and other special layers are left as transformers builds them."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states):
            super().lazy_initialization(key_states, value_states)
            B, H, _, D = key_states.shape  # (B, H, P, D)
            self.key_store = key_states.new_empty(B, H, capacity, D)
            self.value_store = value_states.new_empty(B, H, capacity, value_states.shape[-1])
            self.length = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            self.key_store[:, :, self.length : end] = key_states
            self.value_store[:, :, self.length : end] = value_states
            self.length = end
            self.keys, self.values = self.key_store[:, :, :end], self.value_store[:, :, :end]
            return self.keys, self.values

        def batch_select_indices(self, indices):
            self.key_store, self.value_store = self.key_store[indices], self.value_store[indices]
            self.keys, self.values = (
                self.key_store[:, :, : self.length],
                self.value_store[:, :, : self.length],
            )

    cache = DynamicCache(config=config)
    cache.layers = [PreallocatedLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache

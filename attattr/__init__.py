"""Self-Attention Attribution (Hao et al., AAAI 2021) on PyTorch and Hugging Face transformers 5: attribution scores, attribution trees, head pruning and adversarial triggers

Modules:

- `attattr.lm`: The paper's analyses of what the attribution finds, for decoder-only LMs: the effectiveness analysis (pruning the heads attribution ranks highest or lowest) and attention rollout beside the attribution tree."""

__version__ = "0.1.0"

"""GPT-2 small (124M) on FineWeb-style web text: the classic 10B-token recipe, for accelerators.

    llm-jax train experiments/pretrain_gpt2_124m.py \\
        --config.data.train_paths='("/data/fineweb-edu/sample/10BT/*.parquet",)'
    llm-jax train experiments/pretrain_gpt2_124m.py:hf     # stream HuggingFaceFW/fineweb-edu

Recipe: seq 1024, 512 sequences (~0.5M tokens) per step, 19,073 steps (10B tokens), AdamW
(0.9, 0.95), lr 6e-4 with 700 warmup steps and cosine decay to 10%, weight decay 0.1, clip 1.0,
bf16 compute with fp32 params, FSDP over every device. The tokenizer is trained by the project
on the corpus (vocab 50,304: GPT-2's 50,257 rounded up to a multiple of 64 for the matmuls).
"""

from configs import base, evals, mesh, models
from llm_jax.config import choose


def get_config(arg=None):
    source = choose(arg, {"parquet": "parquet", "hf": "hf"}, "pretrain_gpt2_124m data source")
    config = base.base_config()
    config.stage = "pretrain"
    config.evals = evals.pretrain()
    config.data = base.data(seq_len=1024, batch_size=512, vocab_size=50304,
                            tokenizer_train_chars=200_000_000)
    if source == "hf":
        config.data.hf_dataset = "HuggingFaceFW/fineweb-edu"
        config.data.hf_config = "sample-10BT"
    config.model = models.model("gpt2_124m", vocab_size=50304, dtype="bfloat16")
    config.model.vocab_size = config.data.get_ref("vocab_size")
    config.optim.lr = 6e-4
    config.optim.warmup_steps = 700
    config.optim.grad_accum = 1  # raise on small accelerators: 512 = accum × per-step batch
    config.train.steps = 19073
    config.train.log_every = 10
    config.train.eval_every = 250
    config.train.eval_batches = 20
    config.train.sample_every = 1000
    config.train.checkpoint_every = 1000
    config.mesh = mesh.mesh("fsdp")
    config.wandb.project = "llm-jax-gpt2"
    return config

"""Chat fine-tuning of a Hub model (SmolLM2-135M by default) on one accelerator.

    llm-jax train experiments/sft_smollm.py                      # downloads the model (network)
    llm-jax train experiments/sft_smollm.py --config.init.from_hf=/models/SmolLM2-360M-Instruct
    llm-jax train experiments/sft_smollm.py --config.data.train_paths='("chats.jsonl",)'

The model brings its own tokenizer and chat template (from `tokenizer_config.json`), and the
loss covers the assistant spans that template renders. Recipe: sequences of 1024 tokens, 32
per step, AdamW at 3e-5 with 50 warmup steps and cosine decay, no weight decay, bf16 compute
over fp32 params, FSDP over every device. Without conversation files it trains on the
built-in mixture (identity, refusals, arithmetic, gsm_symbolic, passages).
"""

from configs import base, evals, mesh, sft


def get_config(arg=None):
    config = base.base_config()
    config.stage = "sft"
    config.evals = evals.sft(max_new_tokens=256)
    config.init.from_hf = "HuggingFaceTB/SmolLM2-135M-Instruct"
    config.data = base.data(seq_len=1024, batch_size=32)
    config.model = sft.compute_only_model()
    config.model.dtype = "bfloat16"
    config.mesh = mesh.mesh("fsdp")
    config.sft = sft.sft(identity_name="SmolChat", mixture_size=20000, math_levels=(2, 3, 4, 5))
    config.optim.lr = 3e-5
    config.optim.warmup_steps = 50
    config.optim.weight_decay = 0.0
    config.train.steps = 1000
    config.train.eval_every = 250
    config.train.eval_batches = 8
    config.train.sample_every = 0
    config.train.checkpoint_every = 250
    config.wandb.project = "llm-jax-sft"
    return config


def sweep(add, arg=None):
    for lr in (1e-5, 3e-5, 1e-4):
        add(**{"optim.lr": lr})

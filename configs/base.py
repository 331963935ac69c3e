"""The config skeleton shared by every training stage; experiments fill it in.

Sections: run, init, data, model, optim, train, lora, tools, mesh, wandb. Only trainers and the CLI
read it.
"""

import ml_collections
from ml_collections import config_dict

from configs import mesh as mesh_presets
from configs import optim as optim_presets
from llm_jax.train import compile_cache


def data(seq_len: int = 256, batch_size: int = 8, vocab_size: int = 4096,
         **overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        # Files, folders or globs of .txt / .jsonl / .parquet; empty = the default corpus
        # (Jane Austen + King James Bible, fetched from Debian packages).
        train_paths=(),
        val_paths=(),  # empty with train_paths set = hold out the last document
        text_field="text",  # JSONL key / Parquet column
        hf_dataset=config_dict.placeholder(str),  # e.g. "HuggingFaceFW/fineweb-edu" (online)
        hf_config=config_dict.placeholder(str),
        hf_split="train",
        hf_max_documents=100_000,
        skip_bad=False,  # skip (and count) malformed records instead of stopping
        seq_len=seq_len,
        batch_size=batch_size,  # global batch, in sequences
        shuffle_seed=0,
        vocab_size=vocab_size,  # tokenizer trained on the training corpus at this size
        tokenizer_path="",  # reuse an existing tokenizer .model instead of training one
        tokenizer_train_chars=20_000_000,  # cap on text fed to tokenizer training
        # Generated documents mixed into the training text: generator -> share of the mixed
        # characters (arithmetic = column-worked problems of `generated_levels`, training
        # split only; see llm_jax/recipes/generated.py). 0 = the corpus alone.
        generated=ml_collections.ConfigDict(dict(arithmetic=0.0)),
        generated_levels=(1, 2, 3, 4, 5),
    ) | overrides)


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = ""  # required: which trainer runs it (llm_jax.trainers.TRAINERS)
    config.run = ml_collections.ConfigDict(dict(
        name="",  # run directory name under runs/<experiment>/; default: the experiment arg
        seed=0,
        # JAX's persistent compilation cache: reruns, resumes and sweeps load compiled
        # programs instead of compiling again ("" = off; see llm_jax/train/compile_cache.py)
        compilation_cache=compile_cache.DEFAULT,
    ))
    # Where the params start: a parent run directory or a Hugging Face folder; neither = a
    # random init. A run with checkpoints of its own resumes from them instead.
    config.init = ml_collections.ConfigDict(dict(
        from_run="",  # e.g. runs/pretrain_tiny/default
        from_step=-1,  # the parent's checkpoint to start from; -1 = its newest
        from_hf="",  # a folder with config.json + safetensors (GPT-2, Llama, Qwen2/3)
    ))
    config.data = data()
    config.optim = optim_presets.adamw()
    config.train = ml_collections.ConfigDict(dict(
        steps=1000,  # iterations (an optimizer step, or one RL iteration); raise it and re-run
        # to train further
        # end the stage (final evaluation and save) once its iterations have taken this many
        # seconds, for comparisons at equal wall time; 0 = off. A resumed run starts afresh.
        time_budget_s=0.0,
        log_every=10,
        eval_every=200,
        eval_at_start=False,  # also evaluate the starting params: a stage's "before" numbers
        eval_batches=8,
        sample_every=500,
        sample_prompts=("It is a truth universally acknowledged", "In the beginning"),
        sample_tokens=48,
        sample_temperature=0.8,  # 0 = greedy
        sample_top_p=0.95,
        checkpoint_every=200,
        keep_checkpoints=3,
        on_nonfinite="stop",  # stop | skip: what a NaN/inf loss or gradient does
        peak_flops=0.0,  # per device, for MFU; 0 = look it up from the device kind
    ))
    # LoRA (Hu et al. 2021): train rank-r adapters A·B beside the targeted projections of a
    # frozen parent model; only the adapters reach the optimizer and the checkpoints, and
    # `llm-jax export` merges them into plain weights. Scale alpha/rank, as PEFT.
    config.lora = ml_collections.ConfigDict(dict(
        rank=0,  # 0 = off: train every param
        alpha=16.0,
        dropout=0.0,  # on the adapter's input only
        # Projection names: query key value out (attention), up gate fc_in fc_out (MLP),
        # lm_head.
        targets=("query", "key", "value", "out"),
    ))
    # Tools the generation engine answers (in chat, sample, evaluations and RL rollouts),
    # beside the calculator: search over a BM25 index built by `llm-jax index CORPUS --out DIR`.
    config.tools = ml_collections.ConfigDict(dict(search=ml_collections.ConfigDict(dict(
        index="",  # the index folder; "" = no search tool
        top_k=1,  # passages a call returns
        max_chars=300,  # each cut to this many characters
    ))))
    config.mesh = mesh_presets.mesh("dp")
    config.wandb = ml_collections.ConfigDict(dict(
        project="llm-jax",
        mode="auto",  # auto (online iff a key is set and the server answers) | offline | disabled
        group="",
        entity="",
        tags=(),
    ))
    return config

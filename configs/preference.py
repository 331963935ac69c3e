"""The preference sections of a config: where pairs come from (`preferences`, shared by both
stages), the reward model's loss (`reward_model`) and DPO's (`dpo`), both read by
`llm_jax/trainers/pairwise.py`.

Pairs come from `data.train_paths` (any layout `llm_jax.data.preferences` reads) with held-out
pairs from `data.val_paths`, or a share of the prompts held out; with no files, from the
built-in gold-labelled set: K sampled replies of the parent model to each built-in RLHF prompt,
ranked by the gold judge (`llm_jax.recipes.gold`).
"""

import ml_collections


def preferences(**overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        layout="auto",  # preference files: auto | ranking | explicit | implicit | hh
        # Files without data.val_paths: this share of the prompts (and all their pairs) is held
        # out, so no held-out prompt was seen in training.
        heldout_fraction=0.05,
        # --- the built-in gold-labelled set (data.train_paths empty), cached in the run dir
        responses_per_prompt=8,  # K replies per prompt → up to K(K−1)/2 pairs (ties dropped)
        max_new_tokens=48,
        temperature=1.0,
        label_noise=0.0,  # probability the judge flips a training label; held-out labels are clean
        train_prompts=0,  # the first N of rlhf_prompts("train"); 0 = all
        heldout_prompts=0,  # the first N of rlhf_prompts("heldout"); 0 = all
        seed=0,  # sampling and label noise
    ) | overrides)


def reward_model(**overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        # TRL's `center_rewards_coefficient` (Eisenstein et al. 2023): + c·mean((r_c + r_r)²)
        # keeps rewards near 0, so an RL stage's reward scale stays put. TRL default: off.
        center_coef=0.0,
        # Subtract a pair's `margin` (from its record or meta; Llama 2, Touvron et al. 2023)
        # inside the sigmoid. Pairs without one get 0, the plain Bradley-Terry loss.
        use_margin=True,
    ) | overrides)


def dpo(**overrides) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        beta=0.1,  # β of Rafailov et al. 2023 (TRL's default 0.1)
        label_smoothing=0.0,  # ε of conservative DPO (Mitchell 2023); TRL's default 0
    ) | overrides)

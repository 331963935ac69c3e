"""A Hub model's Jinja chat template: the same ids as transformers' `apply_chat_template`
and the same assistant mask as its `{% generation %}` markers, token by token, on a
Qwen2-style ChatML template and a tokenizer made here."""

import json

import pytest

from llm_jax.data.chat_jinja import JinjaTemplate
from llm_jax.data.errors import DataError
from llm_jax.data.hf_tokenizer import HFTokenizer
from tests.helpers import require

# Qwen2-style ChatML: a default system turn, "\n" after every <|im_end|>. The second copy marks
# what the assistant generates, so transformers can compute the reference mask.
TURN = "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
QWEN2 = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}" + TURN +
    "{{- message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")
QWEN2_MARKED = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}" + TURN +
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- else -%}{{- message['content'] + '<|im_end|>' + '\\n' -}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CONVERSATION = [
    {"role": "user", "content": "What is 12 times 7?"},
    {"role": "assistant", "content": "12 times 7 is 84.\n#### 84"},
    {"role": "user", "content": "And plus one? Über-quick, s'il te plaît."},
    {"role": "tool", "content": "85"},
    {"role": "assistant", "content": "It is 85."},
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, austen_text):
    """A Hub-style folder: byte-level BPE tokenizer.json, tokenizer_config.json with the
    template, config.json with the eos id."""
    tokenizers = require("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIALS,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([austen_text[:100_000]], trainer)
    root = tmp_path_factory.mktemp("qwenish")
    tok.save(str(root / "tokenizer.json"))
    (root / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": QWEN2, "eos_token": "<|im_end|>", "bos_token": None,
        "pad_token": "<|endoftext|>", "tokenizer_class": "PreTrainedTokenizerFast"}))
    (root / "config.json").write_text(json.dumps({"eos_token_id": tok.token_to_id("<|im_end|>"),
                                                  "pad_token_id": 0}))
    return root


def _reference(folder, template, messages, **kwargs):
    transformers = require("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"),
                                              eos_token="<|im_end|>")
    out = hf.apply_chat_template(messages, chat_template=template, tokenize=True,
                                 return_dict=True, **kwargs)
    return list(out["input_ids"]), out


def test_ids_and_mask_equal_transformers(folder):
    template = JinjaTemplate.from_folder(folder)
    tokenizer = HFTokenizer(folder)
    ids, mask = template.render_for_training(CONVERSATION, tokenizer)
    ref_ids, _ = _reference(folder, QWEN2, CONVERSATION)
    assert ids == ref_ids
    marked_ids, marked = _reference(folder, QWEN2_MARKED, CONVERSATION,
                                    return_assistant_tokens_mask=True)
    assert marked_ids == ref_ids
    assert mask == list(marked["assistant_masks"])
    # Read back: what is trained on is the two replies, each with its <|im_end|>.
    trained = [i for i, m in zip(ids, mask) if m]
    end = tokenizer.stop_ids[0]
    assert trained.count(end) == 2
    assert sum(mask) == len(tokenizer.encode("12 times 7 is 84.\n#### 84<|im_end|>")) + len(
        tokenizer.encode("It is 85.<|im_end|>"))


def test_generation_prompt_equals_transformers(folder):
    template = JinjaTemplate.from_folder(folder)
    prompt = template.render_for_generation(CONVERSATION[:3], HFTokenizer(folder))
    ref, _ = _reference(folder, QWEN2, CONVERSATION[:3], add_generation_prompt=True)
    assert prompt == ref
    assert template.render_text(CONVERSATION[:1], add_generation_prompt=True).endswith(
        "<|im_start|>assistant\n")


def test_generation_markers_render_as_plain_text(folder):
    plain = JinjaTemplate(QWEN2, eos_token="<|im_end|>")
    marked = JinjaTemplate(QWEN2_MARKED, eos_token="<|im_end|>")
    assert plain.render_text(CONVERSATION) == marked.render_text(CONVERSATION)


def test_template_that_rewrites_history_is_refused(folder):
    # Drops every assistant turn but the last: earlier replies vanish from later renders.
    rewriting = ("{%- for m in messages -%}{%- if m['role'] != 'assistant' or loop.last -%}"
                 "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
                 "{%- endif -%}{%- endfor -%}"
                 "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")
    with pytest.raises(ValueError, match="message 1 differently"):
        JinjaTemplate(rewriting).render_for_training(CONVERSATION, HFTokenizer(folder))


def test_raise_exception_and_missing_template(folder, tmp_path):
    strict = JinjaTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(Exception, match="roles must alternate"):
        strict.render_text(CONVERSATION)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    with pytest.raises(DataError, match="tokenizer_config.json: no chat_template"):
        JinjaTemplate.from_folder(tmp_path)

"""Chat templates for training, with `{% generation %}` markers so the loss can be taken on
the assistant's tokens only (transformers' `return_assistant_tokens_mask`).

TRL patches the templates of the model families it knows; the embedded model's (SmolLM2's
ChatML with a default system prompt) and the Zephyr layout are not among them, so their
marked twins live here. Rendering is unchanged by the markers: the model sees at training
exactly the text it sees at inference.
"""

from __future__ import annotations

from notos.errors import NotosError
from notos.llms.chat_templates import NAMED, resolve_template

SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + SMOL_SYSTEM + "<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SMOLLM2_TRAINING = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + SMOL_SYSTEM + "<|im_end|>\\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_TRAINING = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|im_start|>assistant\n"
    "{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ZEPHYR_TRAINING = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|assistant|>\n"
    "{% generation %}{{ m['content'] }}{{ eos_token }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _unescaped(template: str) -> str:
    # The same template comes with '\n' escapes (the model card) or raw newlines in its string
    # literals (the GGUF file); both render alike.
    return template.replace("\\n", "\n")


TRAINING_TWINS = {_unescaped(t): twin for t, twin in
                  ((SMOLLM2, SMOLLM2_TRAINING), (NAMED["chatml"], CHATML_TRAINING), (NAMED["zephyr"], ZEPHYR_TRAINING))}


def template_for(value: str) -> str:
    """`zephyr`, `chatml` or a Jinja string (the recipe key `chat_template`)."""
    try:
        return resolve_template(value)
    except NotosError as exc:
        raise NotosError(f"recipe key 'chat_template': {exc}") from None


def training_template(tokenizer) -> str | None:
    """A marked twin of the tokenizer's template; None when it has markers already.
    Raises when neither notos nor TRL knows how to mark it."""
    template = tokenizer.chat_template
    if "{% generation %}" in template or "{%- generation %}" in template:
        return None
    twin = TRAINING_TWINS.get(_unescaped(template))
    if twin:
        return twin
    from trl.chat_template_utils import get_training_chat_template

    try:
        return get_training_chat_template(tokenizer)
    except ValueError:
        raise NotosError(
            "loss_on: assistant needs a chat template with {% generation %} markers and this model's is not one notos "
            "or TRL can mark; set chat_template: zephyr or chatml, or loss_on: all"
        ) from None

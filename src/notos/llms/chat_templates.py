"""Named chat templates for models whose tokenizer has none (base models before SFT).

The layouts are the published formats (ChatML; Zephyr's `<|system|>`/`<|user|>`/`<|assistant|>`
with `</s>`); a value containing `{%` or `{{` is taken as a Jinja template of the user's own.
"""

from __future__ import annotations

from notos.errors import NotosError

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ZEPHYR = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
NAMED = {"chatml": CHATML, "zephyr": ZEPHYR}


def resolve_template(value: str | None) -> str | None:
    if value is None:
        return None
    if value in NAMED:
        return NAMED[value]
    if "{%" in value or "{{" in value:
        return value
    raise NotosError(f"chat_template {value!r}: use one of {', '.join(NAMED)} or a Jinja template")

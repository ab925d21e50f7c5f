"""Training recipes over TRL, PEFT and accelerate: SFT, DPO and a Bradley-Terry reward model.

A recipe is a YAML file whose keys are the fields of one dataclass (`config.py`); `--set`
layers on top. Shipped recipes live with the pipeline recipes: src/notos/recipes/train/ (their
data in recipes/data/, accelerate configs in recipes/accelerate/). `run.py` picks the trainer
(`sft.py`, `dpo.py`, `reward.py`); each builds TRL's config and trainer from the recipe with the
helpers of `shared.py` and writes one output folder (`outputs.py`). Nothing here re-implements
what TRL already does.
"""

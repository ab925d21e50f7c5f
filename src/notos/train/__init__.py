"""Training recipes over TRL, PEFT and accelerate: SFT, DPO and a Bradley-Terry reward model.

A recipe is a YAML file whose keys are the fields of one dataclass (`config.py`); `--set`
layers on top. Each `run_*` function builds TRL's config and trainer from it and writes one
output folder (`outputs.py`). Nothing here re-implements what TRL already does.
"""

"""Where the files notos ships live: recipes (pipelines here, training in train/), the small data
files they read, accelerate configs. At the floor, so every package finds them without
importing the package that uses them."""

from pathlib import Path

RECIPES = Path(__file__).resolve().parent / "recipes"
TRAINING_RECIPES = RECIPES / "train"
RECIPE_DATA = RECIPES / "data"
ACCELERATE_CONFIGS = RECIPES / "accelerate"

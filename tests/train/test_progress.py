"""The training terminal: a progress bar with ETA and loss (a line per tenth of the run when
not on a terminal), eval results as lines, and no library FutureWarnings (issue 18, item 5)."""

import io
import warnings

from transformers import TrainerControl, TrainerState, TrainingArguments

from notos.train.progress import progress_callback, quiet_libraries


def drive(callback, steps: int, losses: dict, eval_at: int | None = None):
    """Call the callback as transformers' Trainer does: step end, then the step's log."""
    args, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerControl()
    state = TrainerState(max_steps=steps)
    callback.on_train_begin(args, state, control)
    for step in range(1, steps + 1):
        state.global_step = step
        callback.on_step_end(args, state, control)
        if step in losses:
            callback.on_log(args, state, control, logs={"loss": losses[step], "rewards/accuracies": 0.5, "grad_norm": 1.0})
        if step == eval_at:
            callback.on_log(args, state, control, logs={"eval_loss": 0.7, "eval_rewards/accuracies": 1.0, "epoch": 1.0})
    callback.on_train_end(args, state, control)


def test_log_lines_carry_the_step_eta_and_that_steps_loss():
    stream = io.StringIO()
    drive(progress_callback("training", stream, interactive=False), 20, {s: 1.0 / s for s in range(1, 21)}, eval_at=20)
    lines = stream.getvalue().splitlines()
    steps = [line for line in lines if "training: step" in line]
    # One line per tenth of the run (every 2nd step) plus the first: not one per step.
    assert [line.split("step ")[1].split(",")[0] for line in steps] == [f"{s}/20" for s in (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 20)]
    assert "ETA" in steps[0] and "loss 1," in steps[0] and "reward acc 0.5" in steps[0]
    assert "loss 0.05," in steps[-1] and "ETA" not in steps[-1]  # the last line: that step's loss, nothing left
    assert "grad_norm" not in stream.getvalue() and "{" not in stream.getvalue()
    assert lines[-1] == "  eval at step 20: loss 0.7, reward acc 1"


def test_steps_without_a_log_still_get_their_line():
    stream = io.StringIO()
    drive(progress_callback("training", stream, interactive=False), 4, {4: 0.3})  # logging_steps=4
    steps = [line for line in stream.getvalue().splitlines() if "step" in line]
    assert [line.split("step ")[1].split(",")[0] for line in steps] == ["1/4", "2/4", "3/4", "4/4"]
    assert "loss" not in steps[0] and "loss 0.3" in steps[-1]


def test_on_a_terminal_it_is_one_rich_bar():
    stream = io.StringIO()
    drive(progress_callback("training", stream, interactive=True), 5, {s: 0.5 for s in range(1, 6)}, eval_at=5)
    shown = stream.getvalue()
    assert "5/5" in shown and "ETA" in shown and "loss 0.5" in shown and "eval at step 5: loss 0.7" in shown
    assert "training: step" not in shown  # the bar, not the log lines


def test_library_future_warnings_are_quiet_and_ours_are_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_libraries():
            warnings.warn_explicit("`past_key_values` as a tuple is deprecated", FutureWarning, "modeling_llama.py", 1,
                                   module="transformers.models.llama.modeling_llama")
            warnings.warn_explicit("is_gradient_checkpointing is deprecated", FutureWarning, "peft_model.py", 1,
                                   module="peft.peft_model")
            warnings.warn("a notos warning a user should see", FutureWarning)
    assert [str(w.message) for w in caught] == ["a notos warning a user should see"]


def test_a_half_written_checkpoint_is_not_resumed_from(tmp_path):
    from notos.train.outputs import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "none") is None
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")

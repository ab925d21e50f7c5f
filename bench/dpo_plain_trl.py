"""The baseline of bench/dpo_throughput.py: DPO written directly against TRL, as a user would
without notos: the same model folder, data file and settings, nothing else.

    python bench/dpo_plain_trl.py --model DIR --data pairs.jsonl --out DIR [--precompute] ...

Prints one line `RESULT {json}`: train seconds, tokens, tokens/s, peak memory.
"""

import argparse
import json
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precompute", action="store_true")
    args = parser.parse_args()

    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(args.threads)
    dataset = load_dataset("json", data_files=args.data, split="train").select_columns(["prompt", "chosen", "rejected"])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16 if cuda else torch.float32)
    config = DPOConfig(
        output_dir=args.out, learning_rate=5e-4, lr_scheduler_type="constant", max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, max_length=args.max_length, beta=0.1, loss_type=["sigmoid"],
        use_cpu=not cuda, bf16=cuda, gradient_checkpointing=False, logging_steps=1, save_strategy="no",
        report_to="none", disable_tqdm=True, seed=42, precompute_ref_log_probs=args.precompute,
    )
    peft = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft)
    result = trainer.train()
    tokens = max(e.get("num_tokens", 0) for e in trainer.state.log_history)
    seconds = result.metrics["train_runtime"]
    print("RESULT " + json.dumps({
        "train_seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 1e9 if cuda else None,
        "final_loss": next(e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e),
    }), flush=True)


if __name__ == "__main__":
    main()

"""Human review: a local web UI over preference data, an append-only edits log, and hand-off to
Argilla and the Hugging Face Hub."""

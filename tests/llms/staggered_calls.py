"""One generate call starts; once it has decoded `after_steps` steps, a second call joins it."""

import asyncio

from notos.llms import decode


def run_staggered(model, first, first_params, later, later_params, after_steps: int = 1):
    """(outputs of the first call, outputs of the later call, the batch size at every step)."""
    sizes = []
    real_step = decode.Batch.step

    def counting_step(batch, tokens):
        sizes.append(len(tokens))
        return real_step(batch, tokens)

    async def staggered():
        running = asyncio.ensure_future(model.generate(first, first_params))
        while len(sizes) < after_steps:
            await asyncio.sleep(0.005)
        return await asyncio.gather(running, model.generate(later, later_params))

    decode.Batch.step = counting_step
    try:
        first_out, later_out = asyncio.run(staggered())
    finally:
        decode.Batch.step = real_step
    return first_out, later_out, sizes

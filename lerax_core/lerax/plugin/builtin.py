"""The callbacks that Lerax itself registers by name: `"eval"` and `"checkpoint"`.

The core distribution declares this module as its own entry point in the `lerax`
group, so these names resolve like any plugin's (`callback=["console", "eval"]`,
`make("eval", every=8)`) and are listed by `lerax plugins`. The classes are named
as `"module:attribute"` so that discovering plugins does not import JAX.
"""

from lerax.plugin.hookspecs import hookimpl


@hookimpl
def lerax_register_callbacks(register) -> None:
    register(
        "eval",
        "lerax.callback.evaluation:EvalCallback",
        "Greedy evaluation episodes inside the loop, best policy, early stopping.",
    )
    register(
        "checkpoint",
        "lerax.callback.checkpoint:CheckpointCallback",
        "The full training state saved with orbax-checkpoint, to resume from.",
    )

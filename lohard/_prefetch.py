"""A software prefetch for Numba kernels (private).

``prefetch(a, i)`` asks the CPU to start loading the cache line that holds
``a[i]`` (``a[i, 0]`` for a 2-D array; ``prefetch_at(a, i, j)`` for
``a[i, j]``) and returns at once; it changes no value and never faults (an
out-of-range address is only a wasted hint). The random-order loops of BP
use it to overlap the cache misses of the rows they will touch a few steps
on with the work of the current step. Unlike a plain read ahead, a prefetch
does not hold the core's load queue until memory answers, so many misses can
be in flight at once.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _emit_prefetch(context, builder, aryty, ary_value, indices):
    ary = context.make_array(aryty)(context, builder, ary_value)
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, indices, wraparound=False)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    # LLVM renames the unsuffixed intrinsic to its overload for this pointer type when it
    # reads the module (checked with Numba 0.68, LLVM 22; tests/test_prefetch.py).
    # Arguments: read (0), high temporal locality (3), data cache (1).
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch")
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


@intrinsic
def prefetch(typingctx, arr, index):
    """Prefetch hint for ``arr[index]`` (``arr[index, 0]`` for a 2-D array)."""
    if not (isinstance(arr, types.Array) and arr.ndim in (1, 2)
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        zero = context.get_constant(types.intp, 0)
        idx = [context.cast(builder, args[1], idxty, types.intp)] + [zero] * (aryty.ndim - 1)
        return _emit_prefetch(context, builder, aryty, args[0], idx)

    return types.void(arr, index), codegen


@intrinsic
def prefetch_at(typingctx, arr, row, col):
    """Prefetch hint for ``arr[row, col]`` of a 2-D array."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2
            and isinstance(row, types.Integer) and isinstance(col, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty, rty, cty = signature.args
        idx = [context.cast(builder, args[1], rty, types.intp),
               context.cast(builder, args[2], cty, types.intp)]
        return _emit_prefetch(context, builder, aryty, args[0], idx)

    return types.void(arr, row, col), codegen


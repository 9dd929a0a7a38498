"""Test-wide setup: Triton runs in its interpreter on machines without a GPU."""
import os

# Must happen before triton is imported anywhere: without a GPU, Triton kernels are tested on CPU
# tensors through its interpreter.
if not os.path.exists("/dev/nvidia0") and "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "1"

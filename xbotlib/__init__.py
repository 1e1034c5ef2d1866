"""xbotlib: the library behind the `xbot` command. All logic lives here; notebooks and the CLI call it."""
import os

# One BLAS/OpenMP thread per process. xbot's models are small (hundreds of rows, tens of columns), where a
# thread pool only adds hand-offs, and beside the benches' worker processes and PostgreSQL it oversubscribes
# the cores. Measured on 2 cores under load: a 5-fold logistic CV took 230 ms of CPU with OpenBLAS's two
# threads and 26 ms with one; a 20-day campaign 6.8 s of CPU and 5.1 s. It has to be set before numpy loads
# its BLAS (so here, the package's first import); an operator's own setting wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"

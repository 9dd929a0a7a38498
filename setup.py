"""Builds lwdvc (pure Python) and lwdvc_kernels._C (C++/CUDA through CMake, pybind11 style).

Environment variables:
    LWDVC_WITH_CUDA    "auto" (default): CUDA kernels when nvcc and a CUDA build of torch are
                       both found; "0" never; "1" always (fails if they are missing).
    LWDVC_CUDA_ARCHS   CUDA architectures, TORCH_CUDA_ARCH_LIST syntax (default "8.0;9.0").
    CMAKE_BUILD_PARALLEL_LEVEL   parallel compile jobs (default: number of cores).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


def _find_nvcc() -> Path | None:
    candidates = [os.environ.get("CUDACXX")]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            candidates.append(os.path.join(os.environ[var], "bin", "nvcc"))
    candidates += ["/usr/local/cuda/bin/nvcc", shutil.which("nvcc")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            path = Path(candidate)
            return path
    return None


def _toolkit_root(nvcc: Path) -> Path:
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return Path(root)
    return nvcc.resolve().parent.parent


def _cuda_config(torch) -> tuple[bool, str]:
    """Returns (build CUDA?, one-line reason)."""
    request = os.environ.get("LWDVC_WITH_CUDA", "auto").lower()
    if request in ("0", "off", "false", "no"):
        return False, "CUDA kernels disabled by LWDVC_WITH_CUDA=0"
    nvcc = _find_nvcc()
    problems = []
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} is a CPU-only build")
    if nvcc is None:
        problems.append("nvcc was not found (set CUDA_HOME or CUDACXX)")
    if problems:
        if request in ("1", "on", "true", "yes"):
            raise RuntimeError("LWDVC_WITH_CUDA=1 but " + "; ".join(problems))
        return False, "building CPU kernels only: " + "; ".join(problems)
    return True, f"building CPU and CUDA kernels (torch CUDA {torch.version.cuda}, nvcc {nvcc})"


def _nvidia_wheel_paths() -> tuple[str | None, str | None]:
    """Include dir and libnvrtc of the nvidia-* wheels that a CUDA build of torch pulls in."""
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return None, None
    include, nvrtc = None, None
    for base in spec.submodule_search_locations:
        for inc in sorted(glob.glob(os.path.join(base, "cu[0-9]*", "include"))):
            include = inc
        for lib in sorted(glob.glob(os.path.join(base, "cu[0-9]*", "lib", "libnvrtc.so*"))):
            if "builtins" not in lib and ".alt." not in lib:
                nvrtc = lib
        for lib in sorted(glob.glob(os.path.join(base, "cuda_nvrtc", "lib", "libnvrtc.so*"))):
            nvrtc = nvrtc or lib
    return include, nvrtc


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        import pybind11
        import torch

        ext_dir = Path(self.get_ext_fullpath(ext.name)).parent.resolve()
        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        with_cuda, reason = _cuda_config(torch)
        print(f"lwdvc_kernels: {reason}", flush=True)
        archs = os.environ.get("LWDVC_CUDA_ARCHS", "8.0;9.0")
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={ext_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={'Debug' if self.debug else 'Release'}",
            f"-DLWDVC_WITH_CUDA={'ON' if with_cuda else 'OFF'}",
            f"-DLWDVC_CUDA_ARCHS={archs}",
        ]
        if shutil.which("ninja"):
            args.append("-GNinja")
        if with_cuda:
            nvcc = _find_nvcc()
            root = _toolkit_root(nvcc)
            include, nvrtc = _nvidia_wheel_paths()
            args += [f"-DCMAKE_CUDA_COMPILER={root / 'bin' / 'nvcc'}", f"-DCUDA_TOOLKIT_ROOT_DIR={root}"]
            if include:
                args.append(f"-DLWDVC_NVIDIA_INCLUDE={include}")
            if nvrtc:
                args.append(f"-DCUDA_nvrtc_LIBRARY={nvrtc}")
        env = dict(os.environ, TORCH_CUDA_ARCH_LIST=archs)
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        cmake = _cmake_binary()
        subprocess.run([cmake, str(ROOT), *args], cwd=build_temp, check=True, env=env)
        subprocess.run([cmake, "--build", ".", "--config", "Release"], cwd=build_temp, check=True, env=env)


def _cmake_binary() -> str:
    """The cmake from PyPI (4.x) when installed: Debian's 3.25 does not know CUDA20."""
    try:
        import cmake

        return os.path.join(cmake.CMAKE_BIN_DIR, "cmake")
    except ImportError:
        return shutil.which("cmake") or "cmake"


setup(
    packages=find_packages(include=["lwdvc_kernels", "lwdvc_kernels.*"])
    + ["lwdvc"] + [f"lwdvc.{p}" for p in find_packages(where="python/lwdvc")],
    package_dir={"lwdvc": "python/lwdvc"},
    ext_modules=[CMakeExtension("lwdvc_kernels._C")],
    cmdclass={"build_ext": CMakeBuild},
    include_package_data=True,
    zip_safe=False,
)
